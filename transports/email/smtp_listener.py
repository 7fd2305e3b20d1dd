"""The inbound SMTP listener (aiosmtpd): one handler method per SMTP event.

Refusals happen as early as SMTP allows, because a refusal is what makes the sending server,
not us, responsible for telling the sender: unknown users and every other domain at RCPT (we
are never a relay), oversize mail at MAIL/DATA (552, by aiosmtpd's size limit), spam and policy
at the end of DATA. The 250 after DATA is given only once the mail is stored for every
recipient; until then the sender keeps it and retries. Which connections get a session,
and when, is decided before one is built (smtp_admission.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, AnyStr

from aiosmtpd.smtp import SMTP, Envelope, Session

from transports.admission import AdmittingListener
from transports.base import AddressError
from transports.email.addressing import normalise_address, split_recipient
from transports.email.inbox import MailInbox, Refused
from transports.email.incoming_mail import UNREADABLE, IncomingMail, read_mail
from transports.email.smtp_admission import SMTP_LIMITS

if TYPE_CHECKING:
    from transports.email.settings import EmailSettings

log = logging.getLogger(__name__)

ACCEPTED = "250 2.0.0 Message accepted for delivery"
TRY_LATER = "451 4.3.0 Temporary failure storing the message; please try again later"
#: Why mail was refused, by the start of the reply, on /metrics
#: (``portway_inbound_rejected_total{transport="email"}``); other 5xx replies count by code,
#: and sessions over the caps as too-many-sessions.
REFUSALS = (
    ("550 5.1.1", "unknown-recipient"),
    ("550 5.7.1", "refused"),  # relaying, no From, the user's spam or policy rules
    ("552", "too-large"),
)


class MailHandler:
    """aiosmtpd handler for mail to the users' addresses at the gateway's domain."""

    def __init__(self, settings: EmailSettings, inbox: MailInbox) -> None:
        self.settings = settings
        self.inbox = inbox

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        local = split_recipient(address, self.settings.domain)
        if local is None:
            return "550 5.7.1 Relaying denied: this server accepts mail only for its own users"
        if len(envelope.rcpt_tos) >= self.settings.max_recipients:
            return "452 4.5.3 Too many recipients"
        try:
            owner = await self.inbox.owner(local)
        except Exception:
            log.exception("cannot look up the recipient %s", address)
            return "451 4.3.0 Temporary failure looking up the recipient"
        if owner is None:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 Recipient OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = _raw(envelope)
        null_sender = not envelope.mail_from or envelope.mail_from == "<>"
        # Off the event loop: a large HTML mail costs seconds of parsing, and the loop carries
        # every transport's traffic.
        mail = await asyncio.to_thread(
            _read, raw, self.settings.strip_quoted_replies, envelope.mail_from
        )
        if not mail.has_from:
            return "550 5.7.1 Refused: a message needs a From header"
        refusals: list[str] = []
        accepted = 0
        try:
            owners = await self._owners(envelope.rcpt_tos)
            if not owners:  # every binding went away between RCPT and DATA
                return "550 5.1.1 No such user here"
            for user_jid in owners:
                try:
                    await self.inbox.receive(user_jid, mail, raw, null_sender)
                    accepted += 1
                except Refused as refusal:
                    log.info("refused mail %s for %s: %s", mail.message_id, user_jid, refusal.reply)
                    refusals.append(refusal.reply)
        except Exception:
            log.exception("cannot store mail %s", mail.message_id)
            return TRY_LATER
        return ACCEPTED if accepted else refusals[0]

    async def _owners(self, recipients: list[str]) -> list[str]:
        """Recipients to bare JIDs (checked again: a binding may have changed since RCPT)."""
        owners: list[str] = []
        for address in recipients:
            local = split_recipient(address, self.settings.domain)
            owner = await self.inbox.owner(local) if local else None
            if owner and owner not in owners:
                owners.append(owner)
        return owners


def _raw(envelope: Envelope) -> bytes:
    content: Any = envelope.original_content or envelope.content or b""
    return content if isinstance(content, bytes) else str(content).encode("utf-8", "replace")


def _read(raw: bytes, strip_quotes: bool, envelope_sender: str | None) -> IncomingMail:
    """Read the mail; an unreadable From falls back to the envelope sender."""
    try:
        mail = read_mail(raw, strip_quotes=strip_quotes)
    except Exception:  # read_mail is defensive; this is the net under it
        log.exception("could not parse a mail of %d bytes", len(raw))
        mail = IncomingMail(None, True, None, None, UNREADABLE, None, (), (), (), None)
    if mail.sender is None and envelope_sender:
        with contextlib.suppress(AddressError):
            mail = dataclasses.replace(mail, sender=normalise_address(envelope_sender))
    return mail


def refusal_reason(reply: str) -> str | None:
    """The reason a refusing reply is counted under; ``None`` for any other reply."""
    for start, reason in REFUSALS:
        if reply.startswith(start):
            return reason
    return f"smtp-{reply[:3]}" if reply.startswith("5") else None


class CountedSMTP(SMTP):
    """aiosmtpd's SMTP session for one connection the admission let in: counts its
    refusals, and gives its place back when it ends."""

    def __init__(self, handler: MailHandler, ended: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._ended = ended

    async def push(self, status: AnyStr) -> None:
        reply = status if isinstance(status, str) else status.decode("ascii", "replace")
        reason = refusal_reason(reply)
        if reason is not None:
            self.event_handler.inbox.host.count_rejected(reason)
        await super().push(status)

    def connection_lost(self, error: Exception | None) -> None:
        self._ended()
        super().connection_lost(error)


class SmtpListener(AdmittingListener):
    """The SMTP listener: the connections it takes (smtp_admission.py), each an SMTP
    session."""

    name = "SMTP"

    def __init__(self, settings: EmailSettings, inbox: MailInbox) -> None:
        super().__init__(SMTP_LIMITS, lambda: inbox.host.count_rejected("too-many-sessions"))
        self._settings = settings
        self._handler = MailHandler(settings, inbox)

    def session(self, ended: Callable[[], None]) -> CountedSMTP:
        settings = self._settings
        return CountedSMTP(
            self._handler,
            ended,
            data_size_limit=settings.max_message_bytes,
            enable_SMTPUTF8=True,
            hostname=settings.domain,
            ident="Portway ESMTP",
        )


async def listen(settings: EmailSettings, inbox: MailInbox) -> SmtpListener:
    """Start the SMTP listener on ``smtp_listen``."""
    listener = SmtpListener(settings, inbox)
    await listener.start(*settings.smtp_listen)
    return listener
