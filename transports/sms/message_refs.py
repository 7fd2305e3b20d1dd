"""Corrections, retractions, reactions and replies, carried across SMS, which has none of them.

SMS carries text only, so each becomes a text a phone user reads (the forms are below), and
tapbacks phones send as text become XEP-0444 reactions on the message they quote. Each needs
the earlier message's text: ``store.message_ids`` keeps the beginning of every text that
crossed, with its XMPP id and Twilio SID, so this works after a restart as well.

What the user sends (``OutboundMessage.refers``) becomes:

- a correction: ``Correction: <new text>``;
- a reply: ``Re: "<beginning of the message>..."`` on a line, then the text (straight quotes
  and three dots, so that a reply in plain Latin text stays a 160-character GSM-7 segment);
- a reaction: ``Reacted 👍 to “<beginning>…”``, ``Removed 👍 from “…”`` (Android's words),
  unless the user turned reactions off (``sms-settings``): each one is a paid text;
- a retraction: nothing is sent; a word from the gateway says the text cannot be recalled.
"""

from __future__ import annotations

from mappings.message_ids import BODY_CHARS, MessageIdMapping
from mappings.store import Store
from transports.base import Command, CommandResult, Form, FormField, NotFound, OutboundMessage
from transports.events import InboundMessage, Refers
from transports.sms.tapbacks import (
    beginning,
    parse_tapback,
    quote_matches,
    reaction_text,
    with_reaction,
    without_reaction,
)

SETTINGS_NODE = "sms-settings"
SETTINGS_SCOPE = "user"
#: Sending reactions is on until the user turns it off: a reaction is something the user
#: chose to say, and dropping it unasked would leave the phone user out of the conversation.
REACTIONS_DEFAULT = True
REPLY_QUOTE_CHARS = 40


class SmsMessageRefs:
    """What refers to an earlier message, for one SMS transport's users."""

    def __init__(self, transport: str, store: Store) -> None:
        self.transport = transport
        self.store = store

    # -- from phones -------------------------------------------------------------------------

    async def tapback(self, user_jid: str, contact: str, text: str) -> Refers | None:
        """The reaction ``text`` makes on one of the user's recent texts to ``contact``.

        None when ``text`` is no tapback, or quotes none of the user's recent texts: it is
        then shown as the text it is. The contact's whole set on the message is returned,
        as XEP-0444 says it; the store keeps it between the phone's one-at-a-time changes.
        """
        tapback = parse_tapback(text)
        if tapback is None:
            return None
        target = await self._quoted(user_jid, contact, tapback.quote)
        if target is None:
            return None
        reactions = self.store.reactions
        current = await reactions.of(self.transport, user_jid, target, contact)
        change = with_reaction if tapback.added else without_reaction
        now = await reactions.set(
            self.transport, user_jid, target, contact, change(current, tapback.emoji)
        )
        return Refers("reaction", target, reactions=now)

    async def _quoted(self, user_jid: str, contact: str, quote: str) -> str | None:
        """The XMPP id of the newest of the user's texts to ``contact`` that ``quote`` names."""
        sent = await self.store.message_ids.recent(self.transport, user_jid, contact, "out")
        for mapping in sent:
            whole = len(mapping.body) < BODY_CHARS
            if mapping.xmpp_id and quote_matches(quote, mapping.body, stored_whole=whole):
                return mapping.xmpp_id
        return None

    # -- from the user -----------------------------------------------------------------------

    async def text_of(self, message: OutboundMessage) -> str | None:
        """The text to send for ``message``; None when nothing is to be sent."""
        refers = message.refers
        if refers is None:
            return message.body
        if refers.kind == "correction":
            return f"Correction: {message.body}" if message.body.strip() else message.body
        if refers.kind == "reply":
            target = await self._target(message)
            quote = target.body if target is not None and target.body else refers.quote
            if not quote.strip():
                return message.body
            return f'Re: "{beginning(quote, REPLY_QUOTE_CHARS, "...")}"\n{message.body}'
        if refers.kind == "reaction":
            return await self._reaction_text(message, refers)
        return None  # a retraction: see cannot_recall

    async def _reaction_text(self, message: OutboundMessage, refers: Refers) -> str | None:
        """What the user's new set of reactions adds or removes, in words; None if nothing.

        The user's set is kept as the phone was told it: while reactions are off, nothing is
        said and nothing kept, so a later removal of a reaction never sent is not sent either.
        """
        if not await self.sends_reactions(message.user_jid):
            return None
        target = await self._target(message)
        if target is None:
            raise NotFound(
                "The gateway does not know the text you reacted to (it may be too old): "
                "the reaction was not sent."
            )
        user, reactions = message.user_jid, self.store.reactions
        before = await reactions.of(self.transport, user, refers.target, user)
        now = await reactions.set(self.transport, user, refers.target, user, refers.reactions)
        added = [emoji for emoji in now if emoji not in before]
        removed = [emoji for emoji in before if emoji not in now]
        return reaction_text(added, removed, target.body)

    async def _target(self, message: OutboundMessage) -> MessageIdMapping | None:
        """The earlier text ``message`` refers to, if it was with the same contact.

        Another contact's text is never quoted to this one, whatever id a client names.
        """
        assert message.refers is not None
        found = await self.store.message_ids.find(
            self.transport, message.user_jid, message.refers.target
        )
        return found if found is not None and found.contact == message.contact else None

    @staticmethod
    def cannot_recall(message: OutboundMessage, contact_name: str) -> InboundMessage:
        """The gateway's word to a user who retracted a text: it is still on the phone."""
        return InboundMessage(
            user_jid=message.user_jid,
            contact="",  # from the gateway itself: not something the phone user wrote
            body=(
                f"Your text to {contact_name} cannot be recalled: SMS has no way to take a "
                "message back, so it stays on their phone. Nothing was sent."
            ),
        )

    # -- the user's setting -------------------------------------------------------------------

    async def sends_reactions(self, user_jid: str) -> bool:
        settings = await self.store.settings.get(self.transport, user_jid, SETTINGS_SCOPE)
        return bool(settings.get("reactions", REACTIONS_DEFAULT))

    def settings_command(self) -> Command:
        """``sms-settings``: whether the user's reactions are sent as texts."""
        return Command(
            node=SETTINGS_NODE,
            name="SMS settings",
            form=self._settings_form,
            run=self._save_settings,
        )

    async def _settings_form(self, user_jid: str) -> Form:
        field = FormField(
            "reactions",
            "Send my emoji reactions as texts",
            "boolean",
            await self.sends_reactions(user_jid),
            desc="Each reaction is a text, and each text costs money.",
        )
        return Form(
            title="SMS settings",
            instructions="Your own settings for texting through this gateway.",
            fields=(field,),
        )

    async def _save_settings(self, user_jid: str, values: dict[str, object]) -> CommandResult:
        on = bool(values.get("reactions", REACTIONS_DEFAULT))
        settings = await self.store.settings.get(self.transport, user_jid, SETTINGS_SCOPE)
        await self.store.settings.put(
            self.transport, user_jid, SETTINGS_SCOPE, {**settings, "reactions": on}
        )
        if on:
            return CommandResult("Your reactions are sent as texts (each one costs a text).")
        return CommandResult("Your reactions are no longer sent: phones will not see them.")


def recorded_as(message: OutboundMessage, sent_text: str) -> tuple[str | None, str]:
    """The XMPP id and the text to remember a sent SMS by, for what later refers to it.

    A correction is remembered under the id of the message it corrects, as XEP-0308 clients
    show it: a tapback on the corrected text reacts to the message the user sees. A reaction's
    text is remembered as nothing, so no tapback can land on it. The rest: as sent, since a
    phone quotes what it received.
    """
    refers = message.refers
    if refers is not None and refers.kind == "correction":
        return refers.target, sent_text
    if refers is not None and refers.kind == "reaction":
        return message.xmpp_id, ""
    return message.xmpp_id, sent_text
