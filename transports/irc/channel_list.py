"""The server's channel directory (disco#items on the server's JID): LIST, 322…323.

One LIST at a time per connection: a second request while one runs waits for the same
answer. What the server sends is bounded (channels kept, and time), because a big network
lists tens of thousands of channels; the component pages the result (RSM) and keeps it
for the paging session, so LIST is not sent once per page.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from transports.base import GatewayError
from transports.irc.addressing import IrcAddress, is_channel_name
from transports.irc.protocol import IrcLine
from transports.irc.text import strip_formatting
from transports.rooms import RoomListing

if TYPE_CHECKING:
    from transports.irc.session import ServerSession

#: Channels kept from one LIST; a network that lists more is cut here.
MAX_LISTED_CHANNELS = 50000
#: How long LIST may take before the user gets what came so far, or an error if nothing.
LIST_TIMEOUT = 30.0
KEY = ("LIST",)


async def list_channels(session: ServerSession) -> list[RoomListing]:
    """LIST on the server; the channels it names, in its order."""
    if session.conn is None or not session.connected:
        raise GatewayError(f"not connected to {session.server} yet", "service-unavailable", "wait")
    if not session.requests.waiting(KEY):
        session.listing = []
        session.conn.send("LIST")
    try:
        return list(await session.requests.wait(KEY, LIST_TIMEOUT))
    except TimeoutError:
        got, session.listing = session.listing, None
        if got:
            return got  # a slow server: what came in time
        raise GatewayError(
            f"{session.server} did not list its channels in time", "remote-server-timeout", "wait"
        ) from None


async def on_start(session: ServerSession, line: IrcLine) -> None:
    """321 RPL_LISTSTART (old servers): the column titles, nothing to show."""


async def on_item(session: ServerSession, line: IrcLine) -> None:
    """322 RPL_LIST: ``<me> <channel> <users> :<topic>``."""
    listing = session.listing
    name = line.param(1)
    if listing is None or len(listing) >= MAX_LISTED_CHANNELS or not is_channel_name(name):
        return
    users = int(line.param(2)) if line.param(2).isdigit() else None
    topic = strip_formatting(line.param(3))
    listing.append(RoomListing(str(IrcAddress("channel", session.server, name)), users, topic))


async def on_end(session: ServerSession, line: IrcLine) -> None:
    """323 RPL_LISTEND."""
    listing, session.listing = session.listing, None
    session.requests.resolve(KEY, listing or [])
