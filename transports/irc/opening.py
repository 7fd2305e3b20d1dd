"""Opening a user's connection to a server: checks, limits, and one opening at a time.

Joins sent at once (three rooms, three nicks) all need the same connection: the first
opens it, the others wait for that one and then join in their order, so that the first
nick wins and the answers come in the order of the joins (as biboumi). A connection
opened for a raw command or a private message has no nick of the user's choosing yet:
the first join chooses it (``user_commands.choose_nick``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from transports.base import GatewayError
from transports.egress import REFUSED_TEXT, Network, RefusedDestination, resolve_allowed
from transports.irc.addressing import check_channel
from transports.irc.membership import keep
from transports.irc.server_settings import default_nick
from transports.irc.session import ServerSession
from transports.irc.settings_command import SETTINGS_SCOPE
from transports.irc.user_settings import ServerPolicy, connection_settings

if TYPE_CHECKING:
    from transports.irc.transport import IrcTransport

log = logging.getLogger(__name__)


async def open_session(
    transport: IrcTransport, user_jid: str, server: str, nick: str | None
) -> ServerSession:
    """The user's session on ``server``, opened (and started) if there is none yet."""
    key = (user_jid, server)
    session = transport.sessions.get(key)
    if session is not None:
        return session
    opening = transport.opening.get(key)
    if opening is not None:
        return await asyncio.shield(opening)
    future: asyncio.Future[ServerSession] = asyncio.get_running_loop().create_future()
    transport.opening[key] = future
    try:
        session = await _open(transport, user_jid, server, nick)
    except Exception as exc:
        future.set_exception(exc)  # those who waited get the same error
        future.exception()
        raise
    finally:
        transport.opening.pop(key, None)
    future.set_result(session)
    return session


async def _open(
    transport: IrcTransport, user_jid: str, server: str, nick: str | None
) -> ServerSession:
    config = transport.check_server(server)
    policy = ServerPolicy.of(transport.settings, server)
    o = policy.usable(await transport.overrides(user_jid, server))
    connection = connection_settings(
        server, config, policy, o, nick or o.get("nick") or default_nick(user_jid)
    )
    options = connection.options
    if options.allowed_networks is not None:
        await check_destination(server, options.host, options.port, options.allowed_networks)
    # Counted after the awaits above, so that joins at once cannot pass it together.
    held = len(transport.sessions.of_user(user_jid))
    if held >= transport.settings.max_connections_per_user:
        raise GatewayError(
            f"you already have {held} IRC connections, the most this gateway allows; "
            "leave the rooms of another server first",
            "resource-constraint",
            "wait",
        )
    after = list(connection.after_connect)
    session = ServerSession(transport, user_jid, server, options, after, transport.session_gone)
    session.nick_chosen = nick is not None  # opened by a join: its nick is the choice
    transport.sessions[(user_jid, server)] = session
    session.start()
    return session


async def check_destination(server: str, host: str, port: int, allowed: Sequence[Network]) -> None:
    """Refuse, before any connection, a server whose address the gateway may not reach.

    The connection checks again on each attempt (the name may resolve differently later);
    this is for a clear error at join, which says nothing of what listens there.
    """
    try:
        await resolve_allowed(host, port, allowed)
    except RefusedDestination:
        raise GatewayError(
            f"cannot connect to {server}: {REFUSED_TEXT}", "not-allowed", "cancel"
        ) from None
    except OSError as exc:
        raise GatewayError(
            f"cannot connect to {server}: {exc}", "remote-server-not-found", "cancel"
        ) from None


async def restore_persistent_rooms(transport: IrcTransport) -> None:
    """After a gateway restart, rejoin the rooms users marked persistent (bouncer mode)."""
    rows = await transport.host.store.fetch_all(
        "SELECT user_jid, scope FROM user_settings WHERE transport = :transport",
        transport=transport.name,
    )
    for user_jid, scope in rows:
        if not str(scope).startswith(SETTINGS_SCOPE):
            continue
        server = str(scope)[len(SETTINGS_SCOPE) :]
        try:
            transport.check_server(server)
        except GatewayError:
            continue
        overrides = ServerPolicy.of(transport.settings, server).usable(
            await transport.overrides(user_jid, server)
        )
        rooms = [r for r in overrides.get("persistent_rooms", []) if r]
        if not rooms:
            continue
        try:
            session = await open_session(transport, user_jid, server, overrides.get("nick"))
        except GatewayError as exc:
            log.warning("cannot restore %s's rooms on %s: %s", user_jid, server, exc.text)
            continue
        session.nick_chosen = True  # the rooms' own nick, not the first join's
        for room in rooms:
            with contextlib.suppress(GatewayError):
                keep(session, check_channel(room))
