"""echo-message: the user's lines waiting for the server's echo, to carry their XMPP ids.

With ``echo-message`` the server sends each PRIVMSG back once it has accepted it, and the
room shows that echo instead of a local copy: what the user sees is what IRC carried (one
message per line, with the server's time and msgid), and a refused line is never shown as
said. The echo holds no XMPP id, so the ids of the message are matched to echoes in the
order the lines were sent, per target: a server echoes in order, on one connection.
A line the server refuses is never echoed; its error (404) forgets it, so that the next
echo is not given its ids.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from transports.events import Refers

#: Lines waiting for their echo, at most (a server that never echoes cannot grow this).
MAX_WAITING = 200


@dataclass(frozen=True, slots=True)
class SentLine:
    target: str
    #: the ids of the XMPP message, on the first of its lines only
    xmpp_id: str | None
    origin_id: str | None
    #: what the message does to an earlier one (its first line carries it)
    refers: Refers | None = None
    #: the body the user's resources see for it, when not the line's text (a correction
    #: shows the user's text, not its IRC form); a later line of it is not shown (False)
    echo: str | bool | None = None


class Echoes:
    __slots__ = ("_waiting",)  # one per connection

    def __init__(self) -> None:
        self._waiting: deque[SentLine] | None = None

    def expect(
        self,
        target: str,
        lines: int,
        xmpp_id: str | None,
        origin_id: str | None,
        refers: Refers | None = None,
        echo: str | None = None,
    ) -> None:
        """``lines`` lines were sent to ``target`` (a folded key) for one XMPP message.

        With ``refers``, the message is shown once, whole (``echo``), on its first line's
        echo: the user's client replaces or links one message, not each IRC line of it.
        """
        if self._waiting is None:
            self._waiting = deque(maxlen=MAX_WAITING)
        for index in range(lines):
            if index == 0:
                sent = SentLine(target, xmpp_id, origin_id, refers, echo if refers else None)
            else:
                sent = SentLine(target, None, None, None, False if refers else None)
            self._waiting.append(sent)

    def echoed(self, target: str) -> SentLine | None:
        """The oldest line sent to ``target``, now echoed (None: an echo we did not expect)."""
        return self._take(target)

    def forget(self, target: str) -> SentLine | None:
        """The oldest line sent to ``target`` was refused: it will not be echoed."""
        return self._take(target)

    def _take(self, target: str) -> SentLine | None:
        if not self._waiting:
            return None
        for sent in self._waiting:
            if sent.target == target:
                self._waiting.remove(sent)
                if not self._waiting:
                    self._waiting = None
                return sent
        return None
