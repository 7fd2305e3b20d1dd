"""Room names between JID local parts and our room addresses, remembered.

Every room message names its room, and a name goes through nodeprep each time it is parsed
or written: the last ROOM_NAMES_KEPT of each are kept. Few, so that 10,000 users' rooms cost
little.
"""

from __future__ import annotations

import functools

from transports.irc.addressing import IrcAddress, format_address, is_channel_name
from transports.irc.addressing import parse_address as parse_irc_address
from transports.jid_escaping import unescape_localpart

ROOM_NAMES_KEPT = 256


@functools.lru_cache(maxsize=ROOM_NAMES_KEPT)
def parse_room(localpart: str, fixed_server: str | None) -> str | None:
    """A room JID's local part → our room address (None: not a channel); a malformed one
    raises AddressError each time (exceptions are not remembered)."""
    if not is_channel_name(unescape_localpart(localpart)):
        return None
    return str(parse_irc_address(localpart, fixed_server))


@functools.lru_cache(maxsize=ROOM_NAMES_KEPT)
def format_room(room: str, fixed_server: str | None) -> str:
    """A channel's room address (``#name%server``) → its JID local part."""
    name, _, server = room.rpartition("%")
    return format_address(IrcAddress("channel", server, name), fixed_server)
