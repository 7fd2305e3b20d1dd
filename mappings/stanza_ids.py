"""New stanza ids (XEP-0359): unique, UUID-shaped, cheap, and side by side in an index.

Here, below the transports, because the store makes them too: a room line kept in the
archive gets its id there (mappings/archive.py).
"""

from __future__ import annotations

import itertools
import secrets

_ID_PREFIX = secrets.token_hex(12)
_ID_COUNTER = itertools.count()


def new_stanza_id() -> str:
    """A stanza id unique to this process run (random prefix), cheaper than uuid4 per message.

    Written as a UUID (96 random bits, then a counter): some clients (Dino) take only
    UUID-shaped ids as unique enough to drop a second copy by. Transports call it when they
    must remember which XMPP id a foreign message got, so that a reaction or a reply to it
    can be carried back (``mappings/message_ids.py``); the archive, for each room line it
    keeps. The ids of one run grow one by one, so where they are a key they land next to
    each other on the index's last page, not each on a page of its own as random ids do.
    """
    raw = f"{_ID_PREFIX}{next(_ID_COUNTER) & 0xFFFFFFFF:08x}"
    return f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}"
