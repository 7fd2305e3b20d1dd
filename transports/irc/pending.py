"""What the user sent while the connection (or a rejoin) was not there yet.

It waits in ``session.pending``, bounded, and leaves once the server is back: private
messages at registration, a channel's lines once the channel is rejoined. If the server
never comes back, each waiting line becomes an error the user sees: nothing is dropped
without a word.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from transports.base import GatewayError
from transports.events import DeliveryReport
from transports.irc.limits import MAX_OUTGOING_BACKLOG, MAX_PENDING
from transports.irc.outgoing import Referring
from transports.rooms import Occupant, OccupantPresence, RoomError

if TYPE_CHECKING:
    from transports.irc.session import ServerSession


@dataclass
class PendingLine:
    """A message waiting for the connection (or a rejoin) to be sent."""

    target: str  # channel key or nick
    body: str
    xmpp_id: str | None
    origin_id: str | None
    full_jid: str
    in_room: bool
    #: a raw command to the server's JID (``body`` is the checked line)
    raw: bool = False
    #: what the message does to an earlier one (a reply, a reaction…), if anything
    referring: Referring | None = None
    #: when the gateway took it from the user (time.time()): its delivery time on /metrics
    taken_at: float | None = None


def wait_for_connection(session: ServerSession, item: PendingLine) -> None:
    if len(session.pending) >= MAX_PENDING:
        raise GatewayError(
            f"{MAX_PENDING} messages already wait for {session.server}; try again once connected",
            "resource-constraint",
            "wait",
        )
    session.pending.append(item)


def check_backlog(session: ServerSession) -> None:
    """Refuse rather than queue without end behind the anti-flood throttle."""
    if session.conn is not None and session.conn.backlog >= MAX_OUTGOING_BACKLOG:
        raise GatewayError(
            f"too much is still waiting to be sent to {session.server}; try again shortly",
            "resource-constraint",
            "wait",
        )


def drop_for_channel(session: ServerSession, channel_key: str) -> None:
    """The channel is left (or lost): what waited to be said there is not sent."""
    session.pending = [p for p in session.pending if not (p.in_room and p.target == channel_key)]


async def fail_all(session: ServerSession, text: str) -> None:
    """The server is gone for good: every waiting line comes back as an error."""
    for item in session.pending:
        if item.in_room:
            channel = session.channels.get(item.target)
            if channel is None:  # left: its lines were dropped already (drop_for_channel)
                continue
            await session.hooks.deliver_event(
                RoomError(
                    session.user_jid,
                    session.room(channel),
                    (item.full_jid.partition("/")[2],),
                    "message",
                    "remote-server-timeout",
                    text,
                    item.xmpp_id,
                )
            )
        elif item.xmpp_id:
            await session.hooks.deliver_event(
                DeliveryReport(
                    item.full_jid or session.user_jid,  # a bare JID's error is dropped
                    session.server if item.raw else session.contact(item.target),
                    item.xmpp_id,
                    False,
                    text,
                )
            )
    session.pending.clear()


async def give_up(session: ServerSession, reason: str) -> None:
    """The server is gone for good: every waiting message and join becomes an error."""
    text = f"cannot connect to {session.server}: {reason}"
    await fail_all(session, text)
    for channel in list(session.channels.values()):
        room = session.room(channel)
        if channel.awaiting:
            await session.hooks.deliver_event(
                RoomError(
                    session.user_jid,
                    room,
                    tuple(channel.awaiting),
                    "join",
                    "remote-server-not-found",
                    text,
                )
            )
        if channel.present():
            await session.hooks.deliver_event(
                OccupantPresence(
                    session.user_jid,
                    room,
                    channel.present(),
                    Occupant(session.nick, "none", "none"),
                    available=False,
                    is_self=True,
                    status=text,
                )
            )
    session.channels.clear()
