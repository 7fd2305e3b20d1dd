"""Mail for a user turned into events for XMPP: messages, threads, attachments, bounces.

This is the decision half of inbound SMTP; the protocol half (replies, sizes, envelopes) is
in :mod:`transports.email.smtp_listener`. A refusal here carries the SMTP reply to give, so a
sender learns why in words, and no half-accepted mail is left behind.
"""

from __future__ import annotations

import hashlib
import logging
from typing import TYPE_CHECKING

from mappings.message_ids import MessageIdMapping
from transports.email.incoming_mail import Attachment, IncomingMail
from transports.email.mail_headers import MailHeaderLog, MailHeaders
from transports.email.mail_refs import MailRefs
from transports.events import DeliveryReport, InboundMessage
from transports.media import MediaError, ServedMedia

if TYPE_CHECKING:
    from transports.base import TransportHost
    from transports.email.settings import EmailSettings

log = logging.getLogger(__name__)
NAME = "email"
#: Attachments kept of one mail. A single multipart holds as many parts as its size allows
#: (a 10 MB mail, some 300,000 one-byte files), each one a served file and a database write
#: on the store every transport shares; real mail carries a handful. The rest are counted in
#: a note.
MAX_ATTACHMENTS = 32


class Refused(Exception):
    """Mail a user will not get; ``reply`` is the SMTP reply (``550 5.7.1 …``)."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = reply


class MailInbox:
    def __init__(
        self,
        settings: EmailSettings,
        host: TransportHost,
        headers: MailHeaderLog,
        media: ServedMedia,
    ) -> None:
        self.settings = settings
        self.host = host
        self.headers = headers
        self.media = media
        self.refs = MailRefs(host.store, headers, host.domain)

    async def owner(self, local_part: str) -> str | None:
        """The bare JID bound to ``local_part@domain``, if it may receive mail."""
        registration = await self.host.store.registrations.by_address(NAME, local_part)
        if registration is None or not self.host.is_allowed(registration.user_jid):
            return None
        return registration.user_jid

    async def receive(
        self, user_jid: str, mail: IncomingMail, raw: bytes, null_sender: bool
    ) -> None:
        """Store ``mail`` for ``user_jid``; raise :class:`Refused`. A duplicate is a success."""
        mail_key = mail.message_id or "sha256:" + hashlib.sha256(raw).hexdigest()
        dedup_key = f"{user_jid}|{mail_key}"
        if mail.bounce is not None:
            await self._bounce(user_jid, mail, dedup_key)
            return
        if null_sender:
            raise Refused("550 5.7.1 Mail with a null sender must be a delivery status report")
        if mail.sender is None:
            raise Refused("550 5.7.1 A message needs a valid From address")
        roster_only = self.settings.inbound_policy == "roster"
        if roster_only and not await self._known(user_jid, mail.sender):
            raise Refused("550 5.7.1 This address accepts mail only from its owner's contacts")
        thread = await self._thread(user_jid, mail)
        xmpp_id = "mail-" + hashlib.sha256(dedup_key.encode()).hexdigest()[:24]
        text, refers = await self.refs.of_mail(user_jid, mail)
        if refers is not None and refers.kind == "reaction":
            reaction = InboundMessage(user_jid, mail.sender, "", xmpp_id=xmpp_id, refers=refers)
            await self.host.deliver(reaction, dedup_key=dedup_key, durable=True)
            return
        urls, notes = await self._attachments(user_jid, mail_key, mail.attachments)
        body = "\n".join(part for part in (text, *notes, *urls) if part)
        event = InboundMessage(
            user_jid=user_jid,
            contact=mail.sender,
            body=body or mail.subject or "(empty email)",
            remote_id=mail.message_id,
            xmpp_id=xmpp_id,
            subject=mail.subject,
            thread=thread,
            oob_urls=tuple(urls),
            nick=mail.nick,
            refers=refers,
        )
        if mail.message_id:
            await self.headers.remember(
                MailHeaders(
                    user_jid, mail.sender, mail.message_id, thread, mail.subject, mail.references
                )
            )
        if await self.host.deliver(event, dedup_key=dedup_key, durable=True):
            await self.host.store.message_ids.record(
                MessageIdMapping(
                    NAME, user_jid, mail.sender, "in", xmpp_id, mail.message_id, thread, text
                )
            )
        else:
            log.info("dropped a duplicate of %s for %s", mail_key, user_jid)

    async def _bounce(self, user_jid: str, mail: IncomingMail, dedup_key: str) -> None:
        assert mail.bounce is not None
        original = None
        if mail.bounce.original_message_id:
            original = await self.host.store.message_ids.by_remote_id(
                NAME, mail.bounce.original_message_id
            )
        if original is None or original.user_jid != user_jid or original.direction != "out":
            raise Refused("550 5.7.1 This report is not about a message sent from here")
        if not mail.bounce.failed or not original.xmpp_id:
            log.info("ignored a %s report about %s", mail.bounce.action, original.remote_id)
            return
        sent = await self.headers.get(user_jid, mail.bounce.original_message_id or "")
        report = DeliveryReport(
            (sent.sender_jid if sent else None) or user_jid,
            original.contact,
            (sent.xmpp_id if sent else None) or original.xmpp_id,  # a correction's own id
            False,
            mail.bounce.reason(),
        )
        await self.host.deliver(report, dedup_key=dedup_key, durable=True)

    async def _known(self, user_jid: str, sender: str) -> bool:
        """Roster policy: the user has the sender as a contact, or has written to them."""
        if await self.host.store.contacts.get(NAME, user_jid, sender) is not None:
            return True
        sent = await self.host.store.message_ids.last_with(NAME, user_jid, sender, "out")
        return sent is not None

    async def _thread(self, user_jid: str, mail: IncomingMail) -> str | None:
        """The XMPP thread of the conversation this mail answers, or a new one for it."""
        for message_id in mail.thread_ids():
            known = await self.headers.get(user_jid, message_id)
            if known is not None and known.thread:
                return known.thread
        root = mail.thread_root()
        if root is None:
            return None
        # Derived from the root, so later mails of a conversation we joined late still agree.
        return "mail-" + hashlib.sha256(f"{user_jid}|{root}".encode()).hexdigest()[:20]

    async def _attachments(
        self, user_jid: str, mail_key: str, attachments: tuple[Attachment, ...]
    ) -> tuple[list[str], list[str]]:
        """Serve each attachment; return the URLs and a note for each one not kept."""
        urls: list[str] = []
        notes: list[str] = []
        if len(attachments) > MAX_ATTACHMENTS:
            notes.append(
                f"[{len(attachments) - MAX_ATTACHMENTS} more attachments not kept: a mail keeps"
                f" at most {MAX_ATTACHMENTS}]"
            )
        for index, attachment in enumerate(attachments[:MAX_ATTACHMENTS]):
            name = attachment.filename or attachment.content_type
            try:
                urls.append(
                    await self.media.put(
                        attachment.data,
                        attachment.content_type,
                        owner=NAME,
                        ttl_seconds=self.settings.attachment_ttl_hours * 3600,
                        filename=attachment.filename,
                        source_key=f"{NAME}:{user_jid}:{mail_key}:{index}",
                        max_bytes=self.settings.max_attachment_bytes,
                    )
                )
            except MediaError as exc:
                notes.append(f"[attachment {name} not kept: {exc.reason}]")
        return urls, notes
