"""Corrections, retractions, reactions and replies carried between XMPP and mail, both ways.

Each needs the earlier message on the other side: ``store.message_ids`` maps every mail that
crossed (its Message-ID) to the XMPP id it had, with the beginning of its text, and the email
transport's own ``email_headers`` keep each mail's subject, References and date. Both are in
the database, so all of this still works after a restart.

From the user (``OutboundMessage.refers``), see :meth:`MailRefs.plan`:

- reply: threaded onto the replied-to mail (its Message-ID in ``In-Reply-To``, its References
  plus it in ``References``, ``Re:`` its subject), the quote below the text
  (:mod:`refers_text`);
- correction: a new mail in the corrected mail's thread, ``Supersedes:`` it, Subject
  ``Correction: …`` and a first line that says so, the old text quoted below;
- reaction: an RFC 9078 reaction mail (:mod:`reactions`) answering the reacted-to mail;
- retraction: nothing is sent; the transport tells the user mail cannot be recalled.

From mail (:meth:`MailRefs.of_mail`): an RFC 9078 reaction to a known mail of the same
conversation becomes XEP-0444 (the sender's whole set, kept in ``store.reactions``); a mail
that ``Supersedes`` the sender's earlier mail becomes XEP-0308; a mail whose ``In-Reply-To``
names a known mail of the conversation becomes an XEP-0461 reply to it. Anything else is an
ordinary mail.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from transports.base import NotFound, OutboundMessage
from transports.email.addressing import format_contact
from transports.email.reactions import fallback_text
from transports.email.refers_text import (
    attribution,
    correction_text,
    quoted,
    with_quote,
    without_correction_line,
)
from transports.events import Refers

if TYPE_CHECKING:
    from mappings.message_ids import MessageIdMapping
    from mappings.store import Store
    from transports.email.incoming_mail import IncomingMail
    from transports.email.mail_headers import MailHeaderLog, MailHeaders

NAME = "email"


@dataclass(frozen=True)
class MailPlan:
    """What one message of the user's becomes as a mail (fixed before the outbox)."""

    text: str
    #: the mail it answers, when the message names one the gateway knows
    parent: MailHeaders | None = None
    correction: bool = False
    #: the user's whole set of emoji, for an RFC 9078 reaction mail
    reaction: tuple[str, ...] | None = None


class MailRefs:
    def __init__(self, store: Store, headers: MailHeaderLog, domain: str) -> None:
        self.store = store
        self.headers = headers
        self.domain = domain  # the component's, for contact JIDs

    # -- from the user -----------------------------------------------------------------------

    async def plan(self, message: OutboundMessage, own_address: str, own_name: str) -> MailPlan:
        """The mail for ``message`` (not for a retraction: nothing is sent for one)."""
        refers = message.refers
        if refers is None:
            return MailPlan(message.body)
        target = await self._target(message.user_jid, message.contact, refers.target)
        parent = None
        if target is not None and target.remote_id:
            parent = await self.headers.get(message.user_jid, target.remote_id)
        if refers.kind == "reaction":
            if target is None or parent is None:
                raise NotFound(
                    "The gateway does not know the email you reacted to (it may be too old): "
                    "the reaction was not sent."
                )
            await self.store.reactions.set(
                NAME, message.user_jid, refers.target, message.user_jid, refers.reactions
            )
            text = fallback_text(own_name, refers.reactions, quoted(target.body))
            return MailPlan(text, parent, reaction=refers.reactions)
        heading = ""
        if target is not None and parent is not None:
            who = message.contact if target.direction == "in" else own_address
            heading = attribution(parent.created_at, who)
        if refers.kind == "correction":
            old = target.body if target is not None else ""
            return MailPlan(correction_text(message.body, old, heading), parent, correction=True)
        quote = refers.quote or (target.body if target is not None else "")
        return MailPlan(with_quote(message.body, quote, heading), parent)

    async def _target(self, user_jid: str, contact: str, xmpp_id: str) -> MessageIdMapping | None:
        """The earlier mail an XMPP id names, if it was with the same contact: another
        contact's mail is never quoted or threaded to this one, whatever id a client names."""
        found = await self.store.message_ids.find(NAME, user_jid, xmpp_id)
        if found is None or found.contact != contact or not found.remote_id:
            return None
        return found

    # -- from mail ---------------------------------------------------------------------------

    async def of_mail(self, user_jid: str, mail: IncomingMail) -> tuple[str, Refers | None]:
        """The text ``mail`` is shown with (a correction without its marking line), and what
        it does to an earlier message of its conversation."""
        sender = mail.sender or ""
        if mail.reaction is not None:
            target = await self._known(user_jid, sender, mail.in_reply_to[:1])
            if target is not None and target.xmpp_id:
                now = await self.store.reactions.set(
                    NAME, user_jid, target.xmpp_id, sender, mail.reaction
                )
                return mail.text, Refers("reaction", target.xmpp_id, reactions=now)
            return mail.text, None  # about no mail we know: shown as the mail it is
        if mail.supersedes:
            target = await self._known(user_jid, sender, (mail.supersedes,))
            if target is not None and target.direction == "in" and target.xmpp_id:
                text = without_correction_line(mail.text)
                return text, Refers("correction", target.xmpp_id)
        target = await self._known(user_jid, sender, mail.in_reply_to[:1])
        if target is None or not target.xmpp_id:
            return mail.text, None
        author = user_jid if target.direction == "out" else self._contact_jid(sender)
        return mail.text, Refers("reply", target.xmpp_id, target_jid=author)

    async def _known(
        self, user_jid: str, sender: str, message_ids: tuple[str, ...]
    ) -> MessageIdMapping | None:
        for message_id in message_ids:
            found = await self.store.message_ids.find(NAME, user_jid, message_id)
            if found is not None and found.contact == sender and found.remote_id == message_id:
                return found
        return None

    def _contact_jid(self, address: str) -> str:
        return f"{format_contact(address)}@{self.domain}"
