"""Who the members are: their ``user@host`` and account, kept up to date for their real JID.

An occupant's real JID carries its ``user@host`` as resource (as biboumi does), and rooms
announce themselves non-anonymous, so a change of host (CHGHOST), a WHO reply that tells
it, or a change of account (ACCOUNT, account-notify) is shown again to the room.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from transports.irc import membership
from transports.irc.protocol import IrcLine

if TYPE_CHECKING:
    from transports.irc.session import ServerSession


async def update(
    session: ServerSession,
    nick: str,
    *,
    identity: str | None = None,
    account: str | None = None,
    logged_out: bool = False,
) -> None:
    """Set what is known of ``nick`` in every channel, and tell rooms where it changed."""
    for channel in session.channels.values():
        member = channel.member(nick)
        if member is None:
            continue
        before = (member.identity, member.account)
        if identity is not None:
            member.identity = identity
        if account is not None or logged_out:
            member.account = account
        if (member.identity, member.account) != before and channel.joined:
            await membership.tell_room(session, channel, member)


async def on_who_reply(session: ServerSession, line: IrcLine) -> None:
    """352 RPL_WHOREPLY: ``<me> <channel> <user> <host> <server> <nick> <flags> :<hops> …``.

    During a join it completes the member list quietly; otherwise (the user's own WHO)
    it is shown, and what it tells of known members is kept.
    """
    if len(line.params) < 6:
        await session.server_reply(line)
        return
    nick, identity = line.param(5), f"{line.param(2)}@{line.param(3)}"
    channel = session.channels.get(session.fold(line.param(1)))
    if channel is not None and channel.who_pending and channel.names is not None:
        member = channel.names.get(session.fold(nick))
        if member is not None:
            member.identity = identity
        return
    await update(session, nick, identity=identity)
    await session.server_reply(line)


async def on_end_of_who(session: ServerSession, line: IrcLine) -> None:
    """315 RPL_ENDOFWHO: a join waiting for its WHO is complete; else the user's WHO ends."""
    channel = session.channels.get(session.fold(line.param(1)))
    if channel is not None and channel.who_pending:
        await membership.names_complete(session, channel)
    else:
        await session.server_reply(line)


async def on_chghost(session: ServerSession, line: IrcLine) -> None:
    """IRCv3 chghost: ``:nick!old@host CHGHOST <user> <host>``."""
    if len(line.params) >= 2:
        await update(session, line.nick, identity=f"{line.param(0)}@{line.param(1)}")


async def on_account(session: ServerSession, line: IrcLine) -> None:
    """IRCv3 account-notify: ``:nick!u@h ACCOUNT <account>`` (``*``: logged out)."""
    account = line.param(0)
    if account == "*":
        await update(session, line.nick, logged_out=True)
    elif account:
        await update(session, line.nick, account=account)
