"""IRCv3 batches: which lines the server is replaying rather than saying now.

A server (or a bouncer) that replays a channel's backlog wraps it in a ``chathistory`` (or
``znc.in/playback``) batch. Those lines happened earlier, however recent their server-time:
they must reach XMPP as history (XEP-0203 delay), not as live messages. Other batches
(netsplit, netjoin) carry live events and change nothing here.

The server chooses the batch references, so the table of open batches is bounded.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transports.irc.protocol import IrcLine
    from transports.irc.session import ServerSession

REPLAY_TYPES = frozenset({"chathistory", "draft/chathistory", "znc.in/playback"})
MAX_OPEN_BATCHES = 64


class OpenBatches:
    """Reference → type of the batches the server has opened and not yet closed.

    One per connection: slots, and the table only while a batch is open.
    """

    __slots__ = ("_open",)

    def __init__(self) -> None:
        self._open: OrderedDict[str, str] | None = None

    def started(self, reference: str, kind: str) -> None:
        if self._open is None:
            self._open = OrderedDict()
        self._open[reference] = kind
        while len(self._open) > MAX_OPEN_BATCHES:
            self._open.popitem(last=False)  # a server that never closes them

    def ended(self, reference: str) -> None:
        if self._open is not None:
            self._open.pop(reference, None)
            if not self._open:
                self._open = None

    def is_replay(self, line: IrcLine) -> bool:
        """Whether ``line`` belongs to a batch that replays what was said before."""
        reference = line.tags.get("batch")
        if reference is None or self._open is None:
            return False
        return self._open.get(reference) in REPLAY_TYPES


async def on_batch(session: ServerSession, line: IrcLine) -> None:
    """``BATCH +ref type …`` opens a batch, ``BATCH -ref`` closes it."""
    reference = line.param(0)
    if reference.startswith("+") and len(reference) > 1:
        session.batches.started(reference[1:], line.param(1))
    elif reference.startswith("-"):
        session.batches.ended(reference[1:])
