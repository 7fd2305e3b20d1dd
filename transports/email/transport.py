"""Email as an XMPP gateway: addresses are contacts, each user has an address of their own.

Inbound mail arrives on the SMTP listener (:mod:`smtp_listener`, :mod:`inbox`); outbound mail
goes through the durable outbox to the configured smarthost (:mod:`smarthost`). Everything a
retry must repeat identically is fixed in :meth:`EmailTransport.send`, before the outbox.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import TYPE_CHECKING, Any, ClassVar

from mappings.message_ids import MessageIdMapping
from mappings.outbox import RetryPolicy
from transports.base import (
    Delivered,
    Form,
    FormField,
    GatewayError,
    OutboundMessage,
    Pending,
    Registered,
    RegistrationRequired,
    Transport,
    TransportHost,
)
from transports.email import addressing
from transports.email.attachments import final_text, split_links
from transports.email.inbox import NAME, MailInbox
from transports.email.mail_headers import MailHeaderLog, MailHeaders
from transports.email.mail_refs import MailPlan, MailRefs
from transports.email.outgoing_mail import (
    Envelope,
    body_with_links,
    choose_subject,
    compose,
    new_message_id,
    thread_references,
)
from transports.email.rate_limit import RateLimit
from transports.email.refers_text import cannot_recall, correction_subject
from transports.email.settings import EmailSettings
from transports.email.smarthost import send_mail
from transports.email.smtp_listener import REFUSALS, SmtpListener, listen
from transports.events import InboundMessage
from transports.media import served_media
from transports.shared_files import FileSources, SharedFiles, may_fetch

if TYPE_CHECKING:
    from mappings.registrations import Registration

log = logging.getLogger(__name__)


class EmailTransport(Transport):
    name: ClassVar[str] = NAME
    gateway_type: ClassVar[str] = "smtp"
    title: ClassVar[str] = "Email"
    prompt_desc: ClassVar[str] = "Enter the email address of the contact"
    prompt_label: ClassVar[str] = "Email address"
    rejection_reasons: ClassVar[tuple[str, ...]] = (
        *(reason for _reply, reason in REFUSALS),
        "too-many-sessions",
    )
    settings: EmailSettings

    def __init__(self, settings: EmailSettings, host: TransportHost) -> None:
        super().__init__(settings, host)
        self.headers = MailHeaderLog(host.store)
        self.rate_limit = RateLimit(settings.send_rate_per_hour)
        # Relays defer for minutes (greylisting) to hours (outages); give up after two days.
        self.retry_policy = RetryPolicy(
            base_seconds=settings.retry_base_seconds,
            cap_seconds=900.0,
            give_up_after_seconds=48 * 3600.0,
        )
        self._server: SmtpListener | None = None
        self.refs = MailRefs(host.store, self.headers, host.domain)
        self.file_sources = FileSources(
            host.public_url, tuple(settings.attachment_sources), settings.fetch_networks
        )

    async def prepare(self) -> None:
        await self.headers.migrate()

    async def start(self) -> None:
        inbox = MailInbox(self.settings, self.host, self.headers, served_media(self.host))
        self._server = await listen(self.settings, inbox)
        log.info("email: SMTP listener on %s:%s", *self.settings.smtp_listen)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    # -- addressing ----------------------------------------------------------------------------

    def parse_address(self, localpart: str) -> str:
        return addressing.parse_contact(localpart)

    def format_address(self, address: str) -> str:
        return addressing.format_contact(address)

    def address_from_prompt(self, text: str) -> str:
        return addressing.address_from_prompt(text)

    @classmethod
    def own_address(cls, settings: Any, text: str) -> str:
        """``alice`` or ``alice@<domain>`` → ``alice`` (the stored binding is the local part)."""
        local, at, domain = text.strip().rpartition("@")
        if at:
            if domain.lower() != settings.domain.lower():
                raise addressing.AddressError(f"the address must be at {settings.domain}")
            text = local
        return addressing.check_user_local_part(text)

    def own_address_shown(self, address: str) -> str:
        """The bound local part as people write it: ``alice@mail.example.org``."""
        return f"{address}@{self.settings.domain}"

    # -- registration --------------------------------------------------------------------------

    def registration_form(self, user_jid: str, current: Registration | None) -> Form:
        proposed = current.address if current and current.address else None
        name = current.data.get("name") if current else None
        return Form(
            title="Register with Email",
            instructions=(
                f"Choose your email address at {self.settings.domain}. Mail to it reaches you "
                "here, and your messages to email contacts are sent from it."
            ),
            fields=(
                FormField(
                    "address",
                    f"Address (before @{self.settings.domain})",
                    value=proposed or addressing.propose_user_local_part(user_jid),
                    required=True,
                ),
                FormField("name", "Your name, shown to recipients", value=name or ""),
            ),
        )

    async def register(self, user_jid: str, values: dict[str, Any]) -> Registered:
        local = self.own_address(self.settings, str(values.get("address") or ""))
        if local in addressing.ROLE_LOCAL_PARTS:
            raise GatewayError(
                f"{local}@{self.settings.domain} is reserved for the domain's administrators;"
                " choose another address",
                "not-allowed",
                "modify",
            )
        name = " ".join(str(values.get("name") or "").split())[:100]
        return Registered(address=local, data={"name": name} if name else {})

    async def unregistered(self, user_jid: str) -> None:
        await self.headers.forget_user(user_jid)

    # -- outbound ------------------------------------------------------------------------------

    async def send(self, message: OutboundMessage) -> None:
        kind = message.refers.kind if message.refers else None
        body = body_with_links(message.body, message.oob_urls)
        if not body.strip() and kind not in ("reaction", "retraction"):
            return  # chat states and other body-less stanzas have nothing to mail
        registration = await self.host.store.registrations.get(NAME, message.user_jid)
        if registration is None or not registration.address:
            raise RegistrationRequired("register with the email gateway to send email")
        if not self.host.is_allowed(message.user_jid):
            raise GatewayError("your server may not use this gateway", "forbidden", "auth")
        if kind == "retraction":
            text = cannot_recall(message.contact)
            await self.host.deliver(InboundMessage(message.user_jid, "", text))
            return
        text, files = split_links(
            message.body,
            message.oob_urls,
            lambda url: may_fetch(url, message.user_jid, self.file_sources),
        )
        own_name = _own_name(message, registration)
        plan = await self.refs.plan(
            dataclasses.replace(message, body=text),
            f"{registration.address}@{self.settings.domain}",
            own_name,
        )
        wait = self.rate_limit.try_acquire(message.user_jid)
        if wait is not None:
            raise GatewayError(
                f"you sent {self.settings.send_rate_per_hour} emails in the last hour; "
                f"try again in {int(wait // 60) + 1} minutes",
                "resource-constraint",
                "wait",
            )
        envelope, thread = await self._envelope(message, registration, plan)
        data = {"envelope": envelope.to_data(), "thread": thread, "text": plan.text}
        if files:
            data["files"] = list(files)
        if plan.reaction is not None:
            data["reaction"] = list(plan.reaction)
        try:
            queued = await self.host.enqueue(message, data)
        except GatewayError:  # too many waiting: this mail was not sent, so not counted
            self.rate_limit.release(message.user_jid)
            raise
        if not queued:
            self.rate_limit.release(message.user_jid)
            return  # the same stanza again: already queued once
        await self.headers.remember(
            MailHeaders(
                message.user_jid,
                message.contact,
                envelope.message_id,
                thread,
                envelope.subject,
                envelope.references,
                message.from_jid,
                xmpp_id=message.xmpp_id,
            )
        )
        # A correction is named by the message it corrects, as XEP-0308 clients show it: a
        # reaction or reply to the correction mail lands on the message the user sees.
        shown_as = message.refers.target if kind == "correction" and message.refers else None
        await self.host.store.message_ids.record(
            MessageIdMapping(
                NAME,
                message.user_jid,
                message.contact,
                "out",
                shown_as or message.xmpp_id,
                envelope.message_id,
                thread,
                "" if plan.reaction is not None else message.body,
            )
        )

    async def _envelope(
        self, message: OutboundMessage, registration: Registration, plan: MailPlan
    ) -> tuple[Envelope, str]:
        """Headers for the mail: threaded onto the mail the message replies to, reacts to or
        corrects; else onto the XMPP thread's last mail, or the last mail with this contact."""
        parent = plan.parent or await self._last_mail(message)
        message_id = new_message_id(self.settings.domain)
        thread = (
            (plan.parent.thread if plan.parent else None)
            or message.thread
            or (parent.thread if parent else None)
            or _thread_of(message_id)
        )
        subject = choose_subject(
            message.subject, parent.subject if parent else None, self.settings.default_subject
        )
        if plan.correction:
            subject = correction_subject(
                (parent.subject if parent else None) or self.settings.default_subject
            )
        envelope = Envelope(
            message_id=message_id,
            from_address=f"{registration.address}@{self.settings.domain}",
            from_name=_own_name(message, registration),
            to_address=message.contact,
            subject=subject,
            in_reply_to=parent.message_id if parent else None,
            references=thread_references(
                parent.message_id if parent else None, parent.references if parent else ()
            ),
            date=time.time(),
            supersedes=parent.message_id if parent and plan.correction else None,
        )
        return envelope, thread

    async def _last_mail(self, message: OutboundMessage) -> MailHeaders | None:
        """The mail a plain message follows: the XMPP thread's last, or the conversation's."""
        if message.thread:
            return await self.headers.last_in_thread(
                message.user_jid, message.contact, message.thread
            )
        last = await self.host.store.message_ids.last_with(NAME, message.user_jid, message.contact)
        if last is not None and last.remote_id:
            return await self.headers.get(message.user_jid, last.remote_id)
        return None

    async def deliver(self, pending: Pending) -> Delivered:
        envelope = Envelope.from_data(pending.data["envelope"])
        message = pending.message
        text = pending.data.get("text")
        if text is None:  # queued before replies and files: the body and its links
            text = body_with_links(message.body, message.oob_urls)
        shared = SharedFiles(served_media(self.host), self.file_sources)
        files, unfetched = await shared.fetch(
            pending.data.get("files", ()),
            message.user_jid,
            self.settings.max_outgoing_attachments_bytes,
        )
        reaction = pending.data.get("reaction")
        await send_mail(
            self.settings.smarthost,
            compose(
                envelope,
                final_text(text, files, unfetched),
                files,
                tuple(reaction) if reaction is not None else None,
            ),
            envelope.from_address,
            envelope.to_address,
        )
        return Delivered(remote_id=envelope.message_id)


def _own_name(message: OutboundMessage, registration: Registration) -> str:
    """The user's name as recipients see it: the one registered, else the JID's local part."""
    return str(registration.data.get("name") or message.user_jid.split("@", 1)[0])


def _thread_of(message_id: str) -> str:
    """A thread for a new conversation, named after its first mail."""
    return "mail-" + message_id.strip("<>").split("@", 1)[0][-20:]
