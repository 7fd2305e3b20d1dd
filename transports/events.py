"""What flows from a transport to XMPP users, and how one message refers to another.

Each event is a dataclass registered by kind, so the inbound queue can store it as JSON while
the XMPP server is away and rebuild it afterwards. :class:`Refers` is shared by both
directions: a correction, retraction, reaction or reply names the earlier message it is about.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, cast

from mappings.stanza_ids import new_stanza_id as new_stanza_id  # the transports' import

RefersKind = Literal["correction", "retraction", "reaction", "reply"]


@dataclass(frozen=True)
class Refers:
    """What a message does to an earlier message of the same conversation.

    - ``correction`` (XEP-0308): the message's body replaces the earlier one's;
    - ``retraction`` (XEP-0424): the earlier message is withdrawn (no body);
    - ``reaction`` (XEP-0444): ``reactions`` is the sender's whole set of emoji on the
      earlier message now (empty: all removed), as XEP-0444 says it, not a change;
    - ``reply`` (XEP-0461): the body answers the earlier message; ``quote`` is the text
      quoted from it (the XEP-0428 fallback the client sent, or what the network quoted),
      kept apart from the body so each network can quote it its own way.

    ``target`` is the earlier message's XMPP id, as the XEPs name it: in a chat, its ``id``
    (the gateway gives its own messages an origin-id equal to it); in a room, its stanza-id.
    A transport maps it to its own id (IRC msgid, Message-ID, Twilio SID, webhook post id)
    through ``store.message_ids``; ``target_jid`` is who wrote it (XEP-0461 ``to``).
    """

    kind: RefersKind
    target: str
    reactions: tuple[str, ...] = ()
    quote: str = ""
    target_jid: str = ""


_EVENT_KINDS: dict[str, type[Any]] = {}


def event_kind(kind: str) -> Callable[[type[Any]], type[Any]]:
    """Register an event dataclass under a stable name (stored in the inbound queue)."""

    def register(cls: type[Any]) -> type[Any]:
        _EVENT_KINDS[kind] = cls
        cls.kind = kind
        return cls

    return register


def event_to_dict(event: Any) -> dict[str, Any]:
    return {"kind": event.kind, "fields": _plain(event)}


def event_from_dict(data: dict[str, Any]) -> Any:
    return rebuild(_EVENT_KINDS[data["kind"]], data["fields"])


# Events are flat but for a nested dataclass here and there (an occupant in a room presence).
# What each field holds is looked up once per class: the inbound path converts every event,
# and ``dataclasses.asdict`` (a deep copy of everything) was a visible share of its time.


_Shape = tuple[tuple[str, type[Any] | None, bool], ...]
_SHAPES: dict[type[Any], _Shape] = {}


def _shapes(cls: type[Any]) -> _Shape:
    """Each field's name, the dataclass it holds (if any), and whether it is a tuple."""
    known = _SHAPES.get(cls)
    if known is not None:
        return known
    hints = typing.get_type_hints(cls)
    shapes = []
    for item in dataclasses.fields(cls):
        hint = hints[item.name]
        nested = next(
            (arg for arg in (hint, *typing.get_args(hint)) if dataclasses.is_dataclass(arg)),
            None,
        )
        is_tuple = hint is tuple or typing.get_origin(hint) is tuple
        shapes.append((item.name, cast("type[Any] | None", nested), is_tuple))
    _SHAPES[cls] = tuple(shapes)
    return _SHAPES[cls]


def _plain(value: Any) -> dict[str, Any]:
    out = {}
    for name, nested, _ in _shapes(type(value)):
        field_value = getattr(value, name)
        if nested is not None and field_value is not None:
            field_value = _plain(field_value)
        out[name] = field_value
    return out


def rebuild(cls: type[Any], values: dict[str, Any]) -> Any:
    """A dataclass from its JSON form: lists back to tuples, nested dataclasses rebuilt."""
    fields = dict(values)
    for name, nested, is_tuple in _shapes(cls):
        value = fields.get(name)
        if is_tuple and isinstance(value, list):
            fields[name] = tuple(value)
        elif nested is not None and isinstance(value, dict):
            fields[name] = rebuild(nested, value)
    return cls(**fields)


@event_kind("message")
@dataclass(frozen=True)
class InboundMessage:
    """A message from a foreign contact to a user."""

    user_jid: str  # bare JID, or a full JID to reach one resource
    contact: str  # the foreign address (becomes the from JID's local part)
    body: str
    remote_id: str | None = None
    xmpp_id: str | None = None
    subject: str | None = None
    thread: str | None = None
    oob_urls: tuple[str, ...] = ()
    nick: str | None = None  # XEP-0172 display name
    timestamp: float | None = None  # XEP-0203 delay, for messages that waited
    message_type: str = "chat"
    resource: str | None = None  # resource of the contact JID, if any
    refers: Refers | None = None  # a correction, retraction, reaction or reply
    #: what the first ``oob_urls`` entry is, in words (a file's name): OOB ``<desc>``
    oob_desc: str | None = None


@event_kind("chat-state")
@dataclass(frozen=True)
class ContactChatState:
    """A contact is typing, paused or stopped (XEP-0085; IRCv3 ``+typing``)."""

    user_jid: str
    contact: str
    state: str  # composing, paused, active
    resource: str | None = None


@event_kind("presence")
@dataclass(frozen=True)
class ContactPresence:
    """A contact's availability (None ``contact`` means the gateway JID itself)."""

    user_jid: str
    contact: str | None
    available: bool = True
    show: str = ""
    status: str = ""


@event_kind("report")
@dataclass(frozen=True)
class DeliveryReport:
    """What became of a message the user sent: a receipt, or an error stanza."""

    user_jid: str
    contact: str
    xmpp_id: str
    delivered: bool
    reason: str = ""
    #: the XMPP error condition when not delivered (``item-not-found``: no such nick)
    condition: str = "undefined-condition"


@event_kind("room-post")
@dataclass(frozen=True)
class RoomPost:
    """A contact posts into a MUC room of the XMPP side (a hook into ops@conference…).

    The contact must be an occupant first; the component joins it under ``nick`` as needed.
    """

    room_jid: str  # bare JID of the MUC room
    contact: str  # the occupant is <format_address(contact)>@<component domain>
    nick: str
    body: str
    remote_id: str | None = None  # becomes the groupchat message's origin-id
    refers: Refers | None = None  # e.g. a correction of the contact's earlier post

    @property
    def user_jid(self) -> str:
        """The inbound queue files events by recipient: for a room post, the room."""
        return self.room_jid


@event_kind("room-leave")
@dataclass(frozen=True)
class RoomLeave:
    """The contact leaves a MUC room it had joined to post."""

    room_jid: str
    contact: str
    nick: str

    @property
    def user_jid(self) -> str:
        return self.room_jid
