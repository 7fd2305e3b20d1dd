"""Where corrections, retractions, reactions and replies find the message they name.

In a room, a message's stanza-id is the IRC ``msgid`` where the server gives one, and the
room archive keeps its author and text. Private conversations have no archive: each private
message that crosses is recorded in ``store.message_ids`` with both of its ids (its XMPP
id, and the msgid the server gave it, on the line or on its echo-message), so a reaction
or a reply finds its target after a gateway restart too. Reactions are kept whole in
``store.reactions``: XEP-0444 sends a sender's whole set, IRC adds and removes one at a time.

The session reads lines and knows no store: what needs one reaches the transport as an
event (:class:`HeardReaction`, :class:`PrivateEcho`, a message that refers to another),
and :func:`tie` completes it here before it is delivered.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mappings.message_ids import BODY_CHARS, MessageIdMapping
from transports.events import InboundMessage, Refers, new_stanza_id
from transports.irc.outgoing import Referring, Target
from transports.irc.refer_forms import reaction_changes, substitution
from transports.irc.user_settings import ServerPolicy
from transports.rooms import RoomMessage

if TYPE_CHECKING:
    from transports.irc.session import ServerSession
    from transports.irc.transport import IrcTransport

TRANSPORT = "irc"
#: XEP-0444 asks for single emoji; what a network sends is cut to a few graphemes' worth
MAX_REACTION_CHARS = 16


@dataclass(frozen=True)
class HeardReaction:
    """An IRCv3 ``+draft/react`` (or ``+draft/unreact``) TAGMSG: ``message`` is the event
    that will carry it (a room message, or a private one), ``target`` the msgid it names."""

    message: RoomMessage | InboundMessage
    reactor: str  # the nick's contact address
    target: str
    emoji: str
    removed: bool


@dataclass(frozen=True)
class PrivateEcho:
    """echo-message gave the msgid of the user's private message ``xmpp_id``."""

    user_jid: str
    contact: str
    xmpp_id: str
    msgid: str
    body: str


async def tie(transport: IrcTransport, event: Any) -> Any | None:
    """``event`` tied to the stored ids, ready to deliver; None when there is nothing to."""
    if isinstance(event, HeardReaction):
        return await _reaction(transport, event)
    if isinstance(event, PrivateEcho):
        await _record(
            transport, event.user_jid, event.contact, "out", event.xmpp_id, event.msgid, event.body
        )
        return None
    if isinstance(event, RoomMessage) and event.refers and event.refers.kind == "reply":
        return await _room_reply(transport, event)
    if isinstance(event, InboundMessage) and _nick_of(transport, event):
        return await _private(transport, event)
    return event


# -- from IRC -----------------------------------------------------------------------------


def _nick_of(transport: IrcTransport, event: InboundMessage) -> str:
    """The contact address of the nick a private message is from ("" if not from a nick)."""
    address = transport.split_address(event.contact)
    if address.kind == "nick":
        return event.contact
    if address.kind == "channel" and event.resource:  # written to from the room
        return f"{event.resource}%{address.server}"
    return ""


async def _room_reply(transport: IrcTransport, event: RoomMessage) -> RoomMessage:
    """``+draft/reply``: the quote and author of the replied-to line, from the archive."""
    assert event.refers is not None
    found = await _archived(transport, event.user_jid, event.room, event.refers.target)
    if found is None:
        return event
    to = f"{transport.format_room(event.room)}@{transport.host.domain}/{found.nick}"
    refers = dataclasses.replace(event.refers, quote=found.body, target_jid=to)
    return dataclasses.replace(event, refers=refers)


async def _private(transport: IrcTransport, event: InboundMessage) -> InboundMessage:
    """A private message from a nick: its ids recorded; a reply tied to its target's XMPP
    id; ``s/old/new/`` right after the nick's last message, a correction of it."""
    user = event.user_jid.partition("/")[0]
    contact = _nick_of(transport, event)
    ids = transport.host.store.message_ids
    if not event.xmpp_id:
        event = dataclasses.replace(event, xmpp_id=new_stanza_id())
    refers = event.refers
    if refers is not None and refers.kind == "reply":
        found = await ids.find(TRANSPORT, user, refers.target)
        refers = (
            dataclasses.replace(refers, target=found.xmpp_id, quote=found.body)
            if found is not None and found.xmpp_id
            else None
        )
        event = dataclasses.replace(event, refers=refers)
    fix = substitution(event.body) if refers is None else None
    recent = await ids.recent(TRANSPORT, user, contact, "in", 1) if fix else []
    earlier = recent[0] if recent else None
    # Only the beginning of a long message is kept: that one cannot be corrected whole.
    if fix and earlier and earlier.xmpp_id and len(earlier.body) < BODY_CHARS:
        fixed = fix.applied(earlier.body)
        if fixed is not None:
            await _record(transport, user, contact, "in", earlier.xmpp_id, earlier.remote_id, fixed)
            correction = Refers("correction", earlier.xmpp_id)
            return dataclasses.replace(event, body=fixed, refers=correction)
    await _record(transport, user, contact, "in", event.xmpp_id, event.remote_id, event.body)
    return event


async def _reaction(transport: IrcTransport, heard: HeardReaction) -> Any | None:
    message = heard.message
    user = message.user_jid.partition("/")[0]
    target = heard.target
    if isinstance(message, InboundMessage):  # private: the XMPP id of the message
        found = await transport.host.store.message_ids.find(TRANSPORT, user, target)
        if found is None or not found.xmpp_id:
            return None  # a message the gateway never carried (or long forgotten)
        target = found.xmpp_id
    elif _archiving(transport) and await _archived(transport, user, message.room, target) is None:
        return None  # not a line of this room: no reactions kept for made-up ids
    emoji = heard.emoji[:MAX_REACTION_CHARS]
    change = {"remove": (emoji,)} if heard.removed else {"add": (emoji,)}
    now = await transport.host.store.reactions.change(
        TRANSPORT, user, target, heard.reactor, **change
    )
    return dataclasses.replace(message, refers=Refers("reaction", target, reactions=now))


# -- to IRC -------------------------------------------------------------------------------


async def room_outgoing(
    transport: IrcTransport, session: ServerSession, room: str, body: str, refers: Refers
) -> Referring:
    """The user's message doing ``refers`` in ``room``, with what is known of its target."""
    address = transport.split_address(room)
    channel = session.channels.get(session.fold(address.name))
    found = await _archived(transport, session.user_jid, room, refers.target)
    nick = refers.target_jid.rpartition("/")[2] if "/" in refers.target_jid else ""
    nick = nick or (found.nick if found else "")
    own = bool(nick) and session.fold(nick) == session.fold(session.nick)
    target = Target(
        msgid=refers.target,
        nick="" if own else nick,
        text=found.body if found else refers.quote,
        last=channel is not None and channel.last_own == refers.target,
    )
    return await _referring(transport, session, body, refers, target)


async def private_outgoing(
    transport: IrcTransport, session: ServerSession, nick: str, body: str, refers: Refers
) -> Referring:
    """The user's private message to ``nick`` doing ``refers``, with its target.

    Only a reply names the nick (``nick: text``, as in a room); a reaction line between
    two people need not say whose message it was.
    """
    ids = transport.host.store.message_ids
    found = await ids.find(TRANSPORT, session.user_jid, refers.target)
    named = nick if refers.kind == "reply" else ""
    target = Target(text=refers.quote, nick=named)
    if found is not None:
        own = found.direction == "out"
        latest = await ids.recent(TRANSPORT, session.user_jid, found.contact, "out", 1)
        target = Target(
            msgid=found.remote_id,
            nick="" if own else named,
            text=found.body,
            last=own and bool(latest) and latest[0].xmpp_id == refers.target,
        )
    return await _referring(transport, session, body, refers, target)


async def send_private(
    transport: IrcTransport,
    session: ServerSession,
    nick: str,
    body: str,
    xmpp_id: str | None,
    full_jid: str,
    refers: Refers | None,
    channel_key: str | None = None,
    taken_at: float | None = None,
) -> None:
    """A private message to ``nick``, in the form IRC carries what it does; its ids kept.

    ``taken_at``: when the gateway took it (time.time()), for its delivery time."""
    referring = None
    if refers is not None:
        referring = await private_outgoing(transport, session, nick, body, refers)
    await session.private(nick, body, xmpp_id, full_jid, channel_key, referring, taken_at)
    await record_sent(transport, session, nick, xmpp_id, body, refers)


async def record_sent(
    transport: IrcTransport,
    session: ServerSession,
    nick: str,
    xmpp_id: str | None,
    body: str,
    refers: Refers | None,
) -> None:
    """Keep the ids of the user's private message (its msgid comes with its echo, if any).

    A correction is kept under the id it corrects, with the IRC id of the first message:
    a later reaction or reply names that message, whose text is now the corrected one.
    """
    contact = session.contact(nick)
    if refers is None:
        if xmpp_id:
            await _record(transport, session.user_jid, contact, "out", xmpp_id, None, body)
        return
    if refers.kind == "correction":
        ids = transport.host.store.message_ids
        first = await ids.find(TRANSPORT, session.user_jid, refers.target)
        remote_id = first.remote_id if first is not None else None
        await _record(transport, session.user_jid, contact, "out", refers.target, remote_id, body)


async def _referring(
    transport: IrcTransport, session: ServerSession, body: str, refers: Refers, target: Target
) -> Referring:
    """With the user's reactions as they change: XEP-0444 sends the whole set each time."""
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    if refers.kind == "reaction":
        reactions = transport.host.store.reactions
        before = await reactions.of(TRANSPORT, session.user_jid, refers.target, session.user_jid)
        now = await reactions.set(
            TRANSPORT, session.user_jid, refers.target, session.user_jid, refers.reactions
        )
        added, removed = reaction_changes(before, now)
    as_text = await reactions_as_text(transport, session.user_jid, session.server)
    return Referring(body, refers, target, as_text, added, removed)


async def reactions_as_text(transport: IrcTransport, user_jid: str, server: str) -> bool:
    """The user's choice (else the admin's) for reactions where IRC has no client tags."""
    config = transport.check_server(server)
    policy = ServerPolicy.of(transport.settings, server)
    usable = policy.usable(await transport.overrides(user_jid, server))
    return bool(usable.get("reactions_as_text", config.reactions_as_text))


def _archiving(transport: IrcTransport) -> bool:
    return transport.archive is not None and transport.settings.archive_rooms


async def _archived(transport: IrcTransport, user_jid: str, room: str, stanza_id: str) -> Any:
    if transport.archive is None or not transport.settings.archive_rooms:
        return None
    return await transport.archive.find(user_jid, room, stanza_id)


async def _record(
    transport: IrcTransport,
    user_jid: str,
    contact: str,
    direction: str,
    xmpp_id: str | None,
    remote_id: str | None,
    body: str,
) -> None:
    await transport.host.store.message_ids.record(
        MessageIdMapping(TRANSPORT, user_jid, contact, direction, xmpp_id, remote_id, None, body)
    )
