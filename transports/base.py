"""The one small interface between the component and a foreign network.

The component turns stanzas into calls on a :class:`Transport` and turns the events a transport
hands to its :class:`TransportHost` into stanzas. Transports never build XML, and the component
never speaks a foreign protocol: everything that crosses this line is a plain dataclass, so the
inbound queue can store it as JSON while the XMPP server is away.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

from transports.events import Refers
from transports.settings import TransportSettings

if TYPE_CHECKING:
    from aiohttp import web

    from mappings.outbox import RetryPolicy
    from mappings.registrations import Registration
    from mappings.store import Store

# ---------------------------------------------------------------------------------------------
# Errors the component turns into XMPP error stanzas


class GatewayError(Exception):
    """A problem the XMPP user should see, as an error stanza with ``condition`` and ``text``."""

    condition: str = "undefined-condition"
    error_type: str = "cancel"

    def __init__(self, text: str, condition: str | None = None, error_type: str | None = None):
        super().__init__(text)
        self.text = text
        if condition:
            self.condition = condition
        if error_type:
            self.error_type = error_type


class AddressError(GatewayError):
    """The JID does not name a valid foreign address."""

    condition = "jid-malformed"
    error_type = "modify"


class NotFound(GatewayError):
    condition = "item-not-found"


class Forbidden(GatewayError):
    condition = "forbidden"
    error_type = "auth"


class RegistrationRequired(GatewayError):
    condition = "registration-required"
    error_type = "auth"


class Conflict(GatewayError):
    condition = "conflict"


# ---------------------------------------------------------------------------------------------
# Outbox delivery outcomes (raised or returned by Transport.deliver)


class RetryLater(Exception):
    """A temporary failure: try again with backoff (or after ``after_seconds`` if given)."""

    def __init__(self, reason: str, after_seconds: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.after_seconds = after_seconds


class DeliveryFailed(Exception):
    """A final failure: the user gets an error stanza with ``reason``, in words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Delivered:
    """Accepted by the foreign side.

    ``final=False`` means the network reports delivery later (Twilio status callbacks); the
    transport then hands a :class:`DeliveryReport` to the host itself.
    """

    remote_id: str | None = None
    final: bool = True


# ---------------------------------------------------------------------------------------------
# What flows from XMPP users to a transport


@dataclass(frozen=True)
class OutboundMessage:
    """A message a user sent to a contact JID of this transport."""

    user_jid: str  # bare JID of the sender
    from_jid: str  # full JID (with resource) of the sender
    contact: str  # the foreign address, as the transport parsed it
    body: str
    xmpp_id: str | None = None
    thread: str | None = None
    subject: str | None = None
    oob_urls: tuple[str, ...] = ()
    receipt_requested: bool = False
    message_type: str = "chat"
    refers: Refers | None = None  # a correction, retraction, reaction or reply


@dataclass(frozen=True)
class UserPresence:
    """Presence a user's resource sent to the component or to a contact."""

    from_jid: str  # full JID
    contact: str | None  # None when sent to the component's own JID
    available: bool
    show: str = ""  # "", "away", "xa", "dnd", "chat"
    status: str = ""


@dataclass(frozen=True)
class Pending:
    """An outbox item handed back to the transport for an attempt."""

    item_id: int
    attempts: int
    message: OutboundMessage
    data: dict[str, Any]


# ---------------------------------------------------------------------------------------------
# Forms (registration and ad-hoc commands); the component renders them as XEP-0004.

FieldType = Literal[
    "text-single", "text-private", "text-multi", "boolean", "list-single", "jid-single", "fixed"
]


@dataclass(frozen=True)
class FormField:
    var: str
    label: str
    type: FieldType = "text-single"
    value: str | bool | None = None
    required: bool = False
    options: tuple[tuple[str, str], ...] = ()  # (value, label)
    desc: str | None = None


@dataclass(frozen=True)
class Form:
    title: str
    instructions: str
    fields: tuple[FormField, ...] = ()


@dataclass(frozen=True)
class CommandResult:
    """What a command shows when it is done: text, and optionally a form for the next step."""

    text: str
    next_form: Form | None = None


CommandHandler = Callable[[str, dict[str, Any]], Awaitable[CommandResult]]


@dataclass(frozen=True)
class Command:
    """An XEP-0050 ad-hoc command: show ``form``, then call ``run(user_jid, values)``.

    ``form`` may be a callable of the user's bare JID, for forms pre-filled per user. When
    ``run`` returns a ``next_form``, the command goes on with ``run`` called again on it.

    Every command is offered on the gateway's own JID. ``on_contact`` offers it on contact
    JIDs as well, for settings that belong to one contact (an IRC server's, on
    ``irc.libera.chat@irc.example.org``): called with a contact's address, it returns the
    command as it runs there (same ``node``; ``form`` and ``run`` bound to that address, so
    they need not ask for it), or None where the command does not apply. The JID the command
    was run on is therefore never a hidden argument: on a contact, it is in the closure.
    """

    node: str
    name: str
    form: Form | Callable[[str], Awaitable[Form]]
    run: CommandHandler
    admin_only: bool = False
    needs_registration: bool = True
    on_contact: Callable[[str], Command | None] | None = None


@dataclass(frozen=True)
class Registered:
    """What a transport makes of a filled-in registration form."""

    address: str | None = None  # the user's own identity there, bound one-to-one
    data: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------


class TransportHost(Protocol):
    """What the component offers a transport."""

    @property
    def domain(self) -> str: ...

    @property
    def store(self) -> Store: ...

    @property
    def public_url(self) -> str: ...

    @property
    def admins(self) -> list[str]: ...

    @property
    def connected(self) -> bool: ...

    def is_allowed(self, user_jid: str) -> bool:
        """Whether the user's domain is in ``allowed_domains``."""

    def add_route(
        self, method: str, path: str, handler: Callable[..., Awaitable[web.StreamResponse]]
    ) -> None:
        """Serve ``path`` on the shared HTTP listener (Twilio callbacks, hooks, media)."""

    def count_rejected(self, reason: str) -> None:
        """Count refused inbound traffic (unknown recipient, bad signature) on /metrics."""

    def handed_out(self, transport: str, accepted_at: float) -> None:
        """A user's message, taken at ``accepted_at`` (time.time()), reached the network:
        its delivery time on /metrics, for a transport that sends without the outbox."""

    async def deliver(
        self, event: Any, *, dedup_key: str | None = None, durable: bool = False
    ) -> bool:
        """Hand an event to XMPP.

        ``durable=True`` returns only after the event is stored (answer the foreign side after
        that); otherwise it is stored only if XMPP is unreachable. Returns ``False`` if
        ``dedup_key`` was seen before, and the event was dropped as a duplicate.
        """

    async def enqueue(self, message: OutboundMessage, data: dict[str, Any] | None = None) -> bool:
        """Store an outbound message in the durable outbox; ``False`` if it was a duplicate."""


class Transport(ABC):
    """A foreign network. Subclasses live in ``transports/<net>/``."""

    #: config section name and store key ("irc", "sms", "email", "webhook")
    name: ClassVar[str]
    #: disco identity type under category "gateway" (irc, sms, smtp, http-ws)
    gateway_type: ClassVar[str]
    #: human name shown in disco
    title: ClassVar[str]
    #: whether users must register before sending (no open relay)
    requires_registration: ClassVar[bool] = True
    #: whether a contact that writes, or is written to, is added to the user's roster (SMS,
    #: email, hooks); IRC nicks come and go too fast for that
    roster_contacts: ClassVar[bool] = True
    #: whether contacts can be group chats: the component then routes room stanzas through
    #: component/muc.py (MUC semantics) instead of the one-to-one path
    supports_rooms: ClassVar[bool] = False
    #: the reasons its refused inbound traffic is counted under on /metrics, said at 0 from
    #: the start (``unrenderable`` is said for every transport)
    rejection_reasons: ClassVar[tuple[str, ...]] = ()
    #: XEP-0100 jabber:iq:gateway prompt
    prompt_desc: ClassVar[str] = "Enter the address of the contact"
    prompt_label: ClassVar[str] = "Address"

    def __init__(self, settings: TransportSettings, host: TransportHost) -> None:
        self.settings = settings
        self.host = host

    async def prepare(self) -> None:
        """Create or upgrade the transport's own tables; no network I/O.

        Called before :meth:`start`, and by ``portway mappings`` (which starts nothing) before
        it calls :meth:`unregistered`.
        """

    async def start(self) -> None:
        """Open listeners and connections; called once the host is ready."""

    async def stop(self) -> None:
        """Close everything; called at shutdown."""

    # -- addressing ---------------------------------------------------------------------------

    @abstractmethod
    def parse_address(self, localpart: str) -> str:
        """Turn a contact JID's local part into the foreign address; raise AddressError."""

    @abstractmethod
    def format_address(self, address: str) -> str:
        """Turn a foreign address into a contact JID's local part (escaped as needed)."""

    @classmethod
    def own_address(cls, settings: Any, text: str) -> str:
        """Normalise the user's own identity there (a Twilio number, an email local part), for
        binding it to a JID from the CLI or a form; raise AddressError if it is not valid.

        A classmethod because ``portway mappings add`` validates without starting anything.
        """
        raise AddressError(f"the {cls.name} transport binds no address to users")

    def address_from_prompt(self, text: str) -> str:
        """XEP-0100: what a user typed (``(555) 765-4321``) to a foreign address."""
        return self.parse_address(text)

    def own_address_shown(self, address: str) -> str:
        """The user's own address there as people write it (email: ``alice@mail.example.org``
        for the bound ``alice``)."""
        return address

    def display_name(self, address: str) -> str:
        """How a contact is named in the user's roster."""
        return address

    def contact_identity(self, address: str) -> tuple[str, str, str]:
        """A contact JID's disco#info identity (category, type, name): clients show the name."""
        return ("client", "pc", self.display_name(address))

    # -- registration -------------------------------------------------------------------------

    def registration_form(self, user_jid: str, current: Registration | None) -> Form:
        return Form(title=f"Register with {self.title}", instructions="Confirm to register.")

    async def register(self, user_jid: str, values: dict[str, Any]) -> Registered:
        """Validate a filled-in registration form; raise GatewayError to refuse it."""
        return Registered()

    async def unregistered(self, user_jid: str) -> None:
        """The user left: close what the transport holds for them."""

    def commands(self) -> list[Command]:
        return []

    # -- traffic from users -------------------------------------------------------------------

    @abstractmethod
    async def send(self, message: OutboundMessage) -> None:
        """A user's message: send it, or ``host.enqueue`` it; raise GatewayError to refuse."""

    async def user_presence(self, presence: UserPresence) -> None:
        """A user's presence changed (IRC turns it into AWAY)."""

    async def chat_state(self, from_jid: str, contact: str, state: str) -> None:
        """The user is typing to a contact (XEP-0085); dropped where the network cannot say."""

    # -- the durable outbox -------------------------------------------------------------------

    retry_policy: RetryPolicy | None = None

    async def deliver(self, pending: Pending) -> Delivered:
        """One attempt at an outbox item: return, or raise RetryLater / DeliveryFailed."""
        raise DeliveryFailed(f"the {self.name} transport has no outbox")
