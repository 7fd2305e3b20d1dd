"""History on join (XEP-0045 §7.2.15): ``maxstanzas``, ``maxchars``, ``seconds``, ``since``.

The transport is asked for at most ``maxstanzas`` lines (none at all for ``maxchars='0'`` or
``seconds='0'``: clients such as poezio ask for that and read MAM instead). The other limits
are applied here, to the history the transport sends on that join: its messages, each with
its timestamp, are held until the room's subject (which ends a join, §7.2.16) and then the
newest of them that fit every limit are sent, oldest first. ``maxchars`` counts the
characters of the complete stanzas, as the XEP says, which only this side can measure.
"""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from slixmpp.xmlstream import StanzaBase

from component.room_namespaces import NS_MUC

#: At most this many history stanzas held for one join; older ones go first.
MAX_HELD = 1000
#: A join whose subject never comes sends what it holds after this long.
HOLD_SECONDS = 10.0


@dataclass(frozen=True)
class HistoryLimit:
    """The limits a join asks for; None where it sets none."""

    maxstanzas: int | None = None
    maxchars: int | None = None
    since: float | None = None  # a time: only messages from then on

    @property
    def none_wanted(self) -> bool:
        return self.maxstanzas == 0 or self.maxchars == 0

    def transport_count(self) -> int | None:
        """What the transport's ``join_room`` is asked for (``max_history``)."""
        return 0 if self.none_wanted else self.maxstanzas

    @property
    def held_here(self) -> bool:
        """Whether this side must select among the history (a limit the transport lacks)."""
        return not self.none_wanted and (self.maxchars is not None or self.since is not None)


def parse_limit(join: ET.Element, now: float) -> HistoryLimit:
    """The ``<history/>`` of a join's ``<x xmlns=muc/>``; values that are not numbers or
    dates are ignored, as if absent (the XEP gives no error for them)."""
    history = join.find(f"{{{NS_MUC}}}history")
    if history is None:
        return HistoryLimit()
    since: float | None = None
    seconds = _count(history.get("seconds"))
    if seconds is not None:
        since = now - seconds if seconds else now + 1.0  # seconds='0': nothing is that new
    when = _date(history.get("since"))
    if when is not None:
        since = when if since is None else max(since, when)
    maxstanzas = _count(history.get("maxstanzas"))
    if seconds == 0:
        maxstanzas = 0
    return HistoryLimit(maxstanzas, _count(history.get("maxchars")), since)


def _count(text: str | None) -> int | None:
    return int(text) if text is not None and text.strip().isdigit() else None


def _date(text: str | None) -> float | None:
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return when.timestamp() if when.tzinfo is not None else None


def select(limit: HistoryLimit, items: list[tuple[float, int]]) -> int:
    """The index of the first of ``items`` (timestamp, size in characters; oldest first) to
    send: the newest run that fits every limit."""
    if limit.none_wanted:
        return len(items)
    start = len(items)
    chars = 0
    for index in range(len(items) - 1, -1, -1):
        timestamp, size = items[index]
        if limit.maxstanzas is not None and len(items) - index > limit.maxstanzas:
            break
        if limit.since is not None and timestamp < limit.since:
            break
        chars += size
        if limit.maxchars is not None and chars > limit.maxchars:
            break
        start = index
    return start


@dataclass
class _Held:
    limit: HistoryLimit
    stanzas: deque[tuple[float, StanzaBase]] = field(default_factory=lambda: deque(maxlen=MAX_HELD))
    timer: asyncio.TimerHandle | None = None


class HistoryHold:
    """The history of joins under way that a limit of this side applies to, per (full JID,
    room), until the join ends (:meth:`release`)."""

    def __init__(self, size: Callable[[StanzaBase], int] = lambda s: len(str(s))) -> None:
        self._held: dict[tuple[str, str], _Held] = {}
        self._size = size

    def start(self, key: tuple[str, str], limit: HistoryLimit) -> None:
        self.release(key)  # a join again: what an earlier one held goes first
        if not limit.held_here:
            return
        loop = asyncio.get_running_loop()
        self._held[key] = _Held(limit, timer=loop.call_later(HOLD_SECONDS, self.release, key))

    def take(self, key: tuple[str, str], timestamp: float, stanza: StanzaBase) -> bool:
        """Hold a history stanza of a join under way; False if none is (send it now)."""
        held = self._held.get(key)
        if held is None:
            return False
        held.stanzas.append((timestamp, stanza))
        return True

    def release(self, key: tuple[str, str]) -> None:
        """The join is over (subject, a live message, leaving): send what the limits keep."""
        held = self._held.pop(key, None)
        if held is None:
            return
        if held.timer is not None:
            held.timer.cancel()
        stanzas = list(held.stanzas)
        first = select(held.limit, [(when, self._size(s)) for when, s in stanzas])
        for _when, stanza in stanzas[first:]:
            stanza.send()

    def holding(self, key: tuple[str, str]) -> bool:
        return key in self._held
