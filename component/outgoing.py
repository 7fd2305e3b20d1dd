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
import xml.etree.ElementTree as ET

from slixmpp import Message
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


def send_written(stream: XMLStream, text: str) -> None:
    """Queue a message written as text, in its place among the stanzas queued before it.

    Text skips slixmpp's stanza objects, its outgoing filters and its serialiser, which
    together were a quarter of the gateway's time passing IRC lines on to XMPP; no filter
    of ours changes a message. A stream other than ours (slixmpp's own) is given the stanza
    object read from the text, as it would have been built.
    """
    if isinstance(stream, OutgoingStream):
        stream.send(text)
    else:
        stream.send(written_message(stream, text))


def written_message(stream: XMLStream, text: str) -> Message:
    """A ``<message/>`` written as text, as the stanza object the server would read.

    For what must be held, measured or sent later as a stanza (a join's history); cleaned
    first, as :meth:`OutgoingStream.send_raw` would clean the text.
    """
    wrapper = ET.fromstring(f'<stream xmlns="{stream.default_ns}">{xml_safe(text)}</stream>')
    return Message(stream, wrapper[0])
