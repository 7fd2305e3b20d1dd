"""XEP-0045 moderation (muc#admin) as IRC commands, answered by the server's echo.

As biboumi: a kick (role ``none``) is ``KICK``; role moderator and affiliations admin
and owner are ``+o``; role participant and affiliation member ``+v``; role visitor and
affiliation none ``-v``; a lower role or affiliation than an op's ``-o``; outcast a ``+b``
mask. The changes go in one MODE line (``+v-o nick nick``), and the call waits until the
server echoes each (KICK, MODE), refuses it (482 and others, see answers.py: the IQ gets
that error), or a short timeout passes.

Ban masks: ``*!*@host`` when the member's host is known (a nick change does not evade it,
and the host is what biboumi bans too), else ``nick!*@*``.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from transports.base import GatewayError
from transports.irc.channel import Member
from transports.irc.limits import one_line

if TYPE_CHECKING:
    from transports.irc.session import ServerSession

#: Seconds to wait for the server's echo of a kick or a mode change.
MODERATION_TIMEOUT = 5.0

ROLES = ("moderator", "participant", "visitor")
AFFILIATIONS = ("owner", "admin", "member", "none", "outcast")


def ban_mask(member: Member) -> str:
    if member.identity and "@" in member.identity:
        return "*!*@" + member.identity.rpartition("@")[2]
    return f"{member.nick}!*@*"


def changes_for(
    member: Member, role: str | None, affiliation: str | None, *, only_effective: bool = True
) -> list[tuple[str, str]]:
    """The ``(±mode, argument)`` changes that give ``member`` this role or affiliation.

    As biboumi's forward_affiliation_role_change: voice first, then op; only what changes
    (a server echoes nothing for a mode already set, so nothing would answer the wait).
    """
    if role is not None and role not in ROLES:
        raise GatewayError(f"IRC has no role {role!r}", "bad-request", "modify")
    if affiliation is not None and affiliation not in AFFILIATIONS:
        raise GatewayError(f"IRC has no affiliation {affiliation!r}", "bad-request", "modify")
    # Not only_effective: as if the member had no voice and was an op (what to send anyway).
    modes = member.modes if only_effective else frozenset("o")
    nick = member.nick
    changes: list[tuple[str, str]] = []
    if (role == "participant" or affiliation == "member") and "v" not in modes:
        changes.append(("+v", nick))
    elif (role == "visitor" or affiliation == "none") and ("v" in modes or not only_effective):
        changes.append(("-v", nick))
    op = role == "moderator" or affiliation in ("admin", "owner")
    lower = role in ("participant", "visitor") or affiliation in ("member", "none")
    if op and ("o" not in modes or not only_effective):
        changes.append(("+o", nick))
    elif lower and not op and "o" in modes:
        changes.append(("-o", nick))
    if affiliation == "outcast":
        changes.append(("+b", ban_mask(member)))
    return changes


async def moderate(
    session: ServerSession,
    channel_name: str,
    nick: str,
    role: str | None,
    affiliation: str | None,
    reason: str,
) -> None:
    channel = session.channels.get(session.fold(channel_name))
    if channel is None:
        raise GatewayError("you are not in this room; join it first", "not-acceptable")
    if session.conn is None or not session.connected or not channel.joined:
        raise GatewayError(f"not in {channel.name} on {session.server} yet", "not-acceptable")
    member = channel.member(nick)
    if member is None:
        raise GatewayError(f"{nick} is not in {channel.name}", "item-not-found")
    commands: list[tuple[str, ...]] = []
    keys: list[tuple[str, ...]] = []
    if role == "none":
        reason = one_line(reason)
        commands.append(("KICK", channel.name, member.nick, *((reason,) if reason else ())))
        keys.append(("KICK", channel.key, session.fold(member.nick)))
        role = None
    changes = changes_for(member, role, affiliation)
    keys += [(mode, channel.key, session.fold(argument)) for mode, argument in changes]
    if not changes and (role is not None or affiliation is not None):
        # Nothing would change: the server echoes nothing, but may still refuse (482) the
        # user's right to do it, as it does for biboumi. A PING after it tells when the
        # server has answered: its PONG comes after any refusal.
        changes = changes_for(member, role, affiliation, only_effective=False)
        session.sync_count += 1
        keys.append(("SYNC", channel.key, f"portway-{session.sync_count}"))
    if changes:  # one line, as an IRC client's /mode: "+v-o nick nick"
        commands.append(("MODE", channel.name, _mode_string(changes), *(a for _, a in changes)))
    if keys and keys[-1][0] == "SYNC":
        commands.append(("PING", keys[-1][2]))
    # Opened before sending: the echo may come before we wait.
    futures = {key: session.requests.open(key) for key in keys}
    for command in commands:
        session.conn.send(*command)
    waits = [session.requests.until(k, f, MODERATION_TIMEOUT) for k, f in futures.items()]
    try:
        await asyncio.gather(*waits)
    except TimeoutError:
        raise GatewayError(
            f"{session.server} did not answer in time", "remote-server-timeout", "wait"
        ) from None


def confirmed(session: ServerSession, channel_key: str, what: str, argument: str) -> None:
    """The server echoed a KICK or a mode change: a request waiting for it is done."""
    session.requests.resolve((what, channel_key, session.fold(argument)))


def _mode_string(changes: list[tuple[str, str]]) -> str:
    """``[("-v", …), ("-o", …)]`` → ``-vo``; ``[("+o", …), ("-v", …)]`` → ``+o-v``."""
    text, sign = "", ""
    for mode, _ in changes:
        if mode[0] != sign:
            sign = mode[0]
            text += sign
        text += mode[1]
    return text
