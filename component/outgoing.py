"""The gateway's side of the XMPP stream, on the way out: always well-formed, written in bulk.

**Well-formed.** XML 1.0 cannot carry most C0 control characters (an IRC user's bell or
terminal escape, a stray byte in a mail) nor lone surrogates. One of them in a stanza makes
the XMPP server close the component's stream, and an event that waited in the inbound queue
would do it again after every reconnect. Text from every network passes through here
serialised, where only text and attribute values can hold such characters, so they are
dropped here, once for all transports.

**In bulk.** slixmpp writes each stanza with a call of its own, and a busy component sends
hundreds at a time (a drained batch, a room's history, a webhook burst). A write is a system
call: it was the gateway's largest single cost in the webhook benchmark. What is sent during
one turn of the event loop is written at the end of that turn, in order and with no delay.
"""

from __future__ import annotations

import asyncio
import logging
import re

from slixmpp.xmlstream import XMLStream
from slixmpp.xmlstream.xmlstream import NotConnectedError

log = logging.getLogger(__name__)

#: What XML 1.0 cannot carry (its Char production, inverted).
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_safe(text: str) -> str:
    """``text`` without the characters XML 1.0 cannot carry."""
    return NOT_XML.sub("", text)


class OutgoingStream(XMLStream):
    """Mixin for an :class:`XMLStream`: ``send_raw`` cleans, gathers, writes once per turn."""

    _unsent: list[bytes] | None = None

    def send_raw(self, data: str | bytes) -> None:
        if not self.transport:
            raise NotConnectedError()  # at once, as slixmpp does: callers rely on it
        log.debug("SEND: %s", data)
        if self._unsent is None:
            self._unsent = []
            asyncio.get_running_loop().call_soon(self._write_unsent)
        self._unsent.append(xml_safe(data).encode() if isinstance(data, str) else data)

    def _write_unsent(self) -> None:
        unsent, self._unsent = self._unsent, None
        # A transport lost meanwhile takes what was meant for it, as a lost socket would.
        if unsent and self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"".join(unsent))
