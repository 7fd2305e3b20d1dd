"""Who is in a channel: the user's joins and leaves, and the members IRC tells of.

The user's side: a resource joins (the session sends JOIN once, and later resources are
welcomed from what is already known), stays in a persistent room, or leaves. IRC's side:
JOIN, the NAMES list (353/366, which also ends a join or a rejoin), PART, QUIT, KICK,
NICK and MODE become occupant presences, to every resource in the room.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from transports.base import GatewayError
from transports.events import ContactPresence
from transports.irc import channel_messages, moderation, private_messages, user_commands
from transports.irc.channel import Channel, Member, split_identity
from transports.irc.limits import MAX_CHANNELS
from transports.irc.modes import parse_mode_changes
from transports.irc.pending import drop_for_channel
from transports.irc.protocol import IrcLine
from transports.rooms import Occupant, OccupantPresence, RoomError, RoomStatus, RoomSubject

if TYPE_CHECKING:
    from transports.irc.session import ServerSession


# -- calls from the user -----------------------------------------------------------------------


async def join(
    session: ServerSession, resource: str, channel_name: str, nick: str, max_history: int | None
) -> None:
    channel = session.channels.get(session.fold(channel_name))
    if channel is None:
        if len(session.channels) >= MAX_CHANNELS:
            raise GatewayError(
                f"you are in {MAX_CHANNELS} channels on {session.server}, the most this "
                "gateway allows; leave one first",
                "resource-constraint",
                "wait",
            )
        channel = Channel(channel_name, casemapping=session.casemapping)
        session.channels[channel.key] = channel
    channel.add_resource(resource, nick, max_history)
    user_commands.choose_nick(session, nick)
    if channel.joined:
        await welcome(session, channel, [resource])
    elif session.connected and session.conn is not None and channel.names is None:
        session.conn.send("JOIN", channel.name)


def keep(session: ServerSession, channel_name: str) -> None:
    """Stay in a channel with no resource there (a persistent room after a restart)."""
    channel = session.channels.get(session.fold(channel_name))
    if channel is None:
        channel = Channel(channel_name, casemapping=session.casemapping)
        session.channels[channel.key] = channel
    channel.persistent = True
    if session.connected and session.conn is not None and not channel.joined:
        session.conn.send("JOIN", channel.name)


async def leave(session: ServerSession, resource: str, channel_key: str, status: str = "") -> None:
    channel = session.channels.get(channel_key)
    if channel is None or resource not in channel.resources:
        return
    channel.remove_resource(resource)
    await session.hooks.deliver_event(
        OccupantPresence(
            session.user_jid,
            session.room(channel),
            (resource,),
            self_occupant(session, channel),
            available=False,
            is_self=True,
        )
    )
    if not channel.wanted:
        del session.channels[channel.key]
        if session.connected and session.conn is not None:
            session.conn.send("PART", channel.name, *((status,) if status else ()))
        drop_for_channel(session, channel.key)


# -- what resources in the room are told -------------------------------------------------------


def self_occupant(session: ServerSession, channel: Channel) -> Occupant:
    member = channel.member(session.nick)
    return session.occupant(member or Member(session.nick))


async def welcome(session: ServerSession, channel: Channel, resources: list[str]) -> None:
    """Bring resources into a joined room: occupants, self-presence, history, subject."""
    room = session.room(channel)
    for resource in resources:
        asked, max_history = channel.welcomed(resource)
        targets = (resource,)
        for member in channel.members.values():
            if session.fold(member.nick) != session.fold(session.nick):
                await session.hooks.deliver_event(
                    OccupantPresence(session.user_jid, room, targets, session.occupant(member))
                )
        asked = asked or session.nick
        await session.hooks.deliver_event(
            OccupantPresence(
                session.user_jid,
                room,
                targets,
                self_occupant(session, channel),
                is_self=True,
                status="nick changed by the server" if asked != session.nick else "",
                nick_assigned=asked != session.nick,
            )
        )
        await session.hooks.history(session.user_jid, room, targets, max_history)
        await session.hooks.deliver_event(
            RoomSubject(session.user_jid, room, targets, channel.topic, channel.topic_by)
        )


async def tell_room(
    session: ServerSession,
    channel: Channel,
    member: Member | Occupant,
    *,
    available: bool = True,
    is_self: bool = False,
    new_nick: str | None = None,
    kicked: bool = False,
    status: str = "",
    actor: str = "",
    reason: str = "",
) -> None:
    """An occupant's presence, to every resource in the room."""
    if not channel.present():
        return
    occupant = session.occupant(member) if isinstance(member, Member) else member
    away = isinstance(member, Member) and member.away and available
    await session.hooks.deliver_event(
        OccupantPresence(
            session.user_jid,
            session.room(channel),
            channel.present(),
            occupant,
            available=available,
            show="away" if away else "",
            is_self=is_self or session.fold(occupant.nick) == session.fold(session.nick),
            new_nick=new_nick,
            kicked=kicked,
            status=status,
            actor=actor,
            reason=reason,
        )
    )


# -- IRC lines ---------------------------------------------------------------------------------


async def on_join(session: ServerSession, line: IrcLine) -> None:
    channel = session.channels.get(session.fold(line.param(0)))
    if channel is None:
        return
    if session.fold(line.nick) == session.fold(session.nick):
        channel.start_names()
        return
    member = channel.add(line.nick, identity=split_identity(line.prefix)[1])
    if len(line.params) >= 3 and line.param(1) != "*":  # extended-join: the account
        member.account = line.param(1)
    await tell_room(session, channel, member)


async def on_names(session: ServerSession, line: IrcLine) -> None:
    """353 RPL_NAMREPLY: part of the member list of a channel being (re)joined."""
    channel = session.channels.get(session.fold(line.param(2)))
    if channel is not None and session.conn is not None:
        channel.add_names(line.param(3).split(), session.conn.prefix_modes)


#: A channel this big is not asked WHO at join (its members' user@host stay unknown).
MAX_WHO_MEMBERS = 500


async def on_end_of_names(session: ServerSession, line: IrcLine) -> None:
    """366 RPL_ENDOFNAMES: the join (or rejoin) is complete; what waited for it goes.

    Without userhost-in-names, NAMES gives no ``user@host``: a WHO first (its 315 then
    completes the join, users.py), so that the occupants the room announces carry their
    real JIDs from the start, as clients of non-anonymous rooms expect.
    """
    channel = session.channels.get(session.fold(line.param(1)))
    if channel is None or channel.names is None or channel.who_pending:
        return
    names = channel.names
    conn = session.conn
    if (
        conn is not None
        and not conn.has_cap("userhost-in-names")
        and len(names) <= MAX_WHO_MEMBERS
        and any(member.identity is None for member in names.values())
    ):
        channel.who_pending = True
        conn.send("WHO", channel.name)
        return
    await names_complete(session, channel)


async def names_complete(session: ServerSession, channel: Channel) -> None:
    """The member list is known: adopt it, tell the room, welcome who waited."""
    channel.who_pending = False
    rejoin = channel.present()
    left, arrived, changed = channel.end_names()
    own = session.conn.self_prefix if session.conn is not None else None
    me = channel.member(session.nick) or channel.add(session.nick)
    if me.identity is None:
        me.identity = split_identity(own or "")[1]
    channel.joined = True
    if rejoin:
        for member in left:
            await tell_room(session, channel, member, available=False)
        for member in arrived + changed:
            await tell_room(session, channel, member)
        await session.hooks.deliver_event(
            RoomStatus(
                session.user_jid,
                session.room(channel),
                rejoin,
                f"Reconnected to {session.server} and rejoined {channel.name}",
            )
        )
    if channel.awaiting:
        await welcome(session, channel, list(channel.awaiting))
    for item in [p for p in session.pending if p.in_room and p.target == channel.key]:
        session.pending.remove(item)
        await channel_messages.say_now(session, channel, item)


async def on_part(session: ServerSession, line: IrcLine) -> None:
    channel = session.channels.get(session.fold(line.param(0)))
    if channel is None:
        return
    if session.fold(line.nick) == session.fold(session.nick):
        return  # our own PART: leave() already told the resource
    member = channel.remove(line.nick)
    if member is not None:
        await tell_room(session, channel, member, available=False, status=line.param(1))


async def on_quit(session: ServerSession, line: IrcLine) -> None:
    for channel in session.channels.values():
        member = channel.remove(line.nick)
        if member is not None:
            await tell_room(session, channel, member, available=False, status=line.param(0))


async def on_kick(session: ServerSession, line: IrcLine) -> None:
    channel = session.channels.get(session.fold(line.param(0)))
    if channel is None:
        return
    victim, reason = line.param(1), line.param(2)
    member = channel.remove(victim) or Member(victim)
    moderation.confirmed(session, channel.key, "KICK", victim)
    await tell_room(
        session,
        channel,
        member,
        available=False,
        kicked=True,
        status=f"kicked by {line.nick}: {reason}" if reason else "",
        actor=line.nick,
        reason=reason,
    )
    if session.fold(victim) == session.fold(session.nick):
        del session.channels[channel.key]
        drop_for_channel(session, channel.key)


async def on_nick(session: ServerSession, line: IrcLine) -> None:
    old, new = line.nick, line.param(0)
    if session.fold(old) == session.fold(session.nick) or session.fold(new) == session.fold(
        session.nick
    ):
        session.nick_room = None
        await session.hooks.deliver_event(
            ContactPresence(session.user_jid, session.server, True, "", f"connected as {new}")
        )
    private_messages.renamed(session, old, new)
    for channel in session.channels.values():
        member = channel.member(old)
        if member is None:
            continue
        occupant = session.occupant(member)
        is_self = session.fold(new) == session.fold(session.nick)
        await tell_room(session, channel, occupant, available=False, new_nick=new, is_self=is_self)
        channel.rename(old, new)
        await tell_room(session, channel, member, is_self=is_self)


async def on_mode(session: ServerSession, line: IrcLine) -> None:
    channel = session.channels.get(session.fold(line.param(0)))
    if channel is None or session.conn is None or len(line.params) < 2:
        return
    changes = parse_mode_changes(
        line.param(1), line.params[2:], session.conn.prefix_modes, session.conn.chanmodes
    )
    for change in changes:
        sign = "+" if change.adding else "-"
        moderation.confirmed(session, channel.key, sign + change.mode, change.argument or "")
    if channel.present():  # as biboumi: the change itself, then the occupants it touched
        said = " ".join(line.params[1:])
        await session.hooks.deliver_event(
            RoomStatus(
                session.user_jid,
                session.room(channel),
                channel.present(),
                f"Mode {channel.name} [{said}] by {line.nick}",
            )
        )
    for member in channel.apply_modes(changes, session.conn.prefix_modes):
        await tell_room(session, channel, member)


# -- refusals ----------------------------------------------------------------------------------


async def join_failed(session: ServerSession, channel: Channel, condition: str, text: str) -> None:
    room = session.room(channel)
    await session.hooks.deliver_event(
        RoomError(session.user_jid, room, tuple(channel.resources), "join", condition, text)
    )
    del session.channels[channel.key]
    drop_for_channel(session, channel.key)


async def _nick_refused(session: ServerSession, line: IrcLine, condition: str) -> None:
    key = session.nick_room
    session.nick_room = None
    channel = session.channels.get(key) if key else None
    if channel is None:
        await session.server_reply(line)
        return
    text = line.param(len(line.params) - 1)
    await channel_messages.refused(session, channel, "nick", condition, text, nick=line.param(1))


async def on_nick_taken(session: ServerSession, line: IrcLine) -> None:
    """433 ERR_NICKNAMEINUSE, 436 ERR_NICKCOLLISION."""
    await _nick_refused(session, line, "conflict")


async def on_nick_invalid(session: ServerSession, line: IrcLine) -> None:
    """432 ERR_ERRONEUSNICKNAME."""
    await _nick_refused(session, line, "jid-malformed")
