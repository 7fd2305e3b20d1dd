"""Hypothesis strategies for hostile outside input, and the check that its text can reach XMPP.

Every parser fed from outside (IRC lines, mail, hook bodies, Twilio forms, JID local parts) is
fuzzed with text an attacker would choose: line breaks, NUL, C0 controls, lone surrogates,
IRC formatting codes, XML's own markup. Whatever text a parser lets through is then written
as the stanza the gateway would send, to show the XMPP stream cannot be broken by it.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from hypothesis import strategies as st

from component.outgoing import xml_safe
from component.render import message_xml
from transports.events import InboundMessage

#: Characters that break lines, streams or parsers when let through unchecked.
HOSTILE_CHARS = (
    "\r",
    "\n",
    "\0",
    "\x01",  # CTCP
    "\x02\x03\x0f\x16\x1d\x1f",  # IRC formatting
    "\x0b\x0c\x1b\x7f\x85",
    "\u2028\u2029",  # Unicode line separators
    "\ud800",  # a lone surrogate
    "\ufffe\uffff",
    " ",
    ":",
    "<",
    ">",
    "&",
    "]]>",
    "\\",
    "@",
    "%",
    "#",
)

#: Any code point, surrogates included (st.text() leaves those out by default).
any_char = st.characters(exclude_categories=())


def hostile_texts(max_size: int = 60) -> st.SearchStrategy[str]:
    """Text mixing the characters above with anything else Unicode holds."""
    return st.lists(st.one_of(st.sampled_from(HOSTILE_CHARS), any_char), max_size=max_size).map(
        "".join
    )


def _xml_normalised(text: str) -> str:
    """What an XML parser reads back for ``text``: line ends folded to LF (XML 1.0 §2.11)."""
    return xml_safe(text).replace("\r\n", "\n").replace("\r", "\n")


def assert_renderable(
    body: str, *, subject: str | None = None, nick: str | None = None, remote_id: str | None = None
) -> None:
    """The stanza made from this text is well-formed XML once cleaned, and says the same.

    This is what the gateway writes: :func:`component.render.message_xml`, then the stream's
    :func:`component.outgoing.xml_safe`.
    """
    for value in (body, subject, nick, remote_id):
        assert value is None or isinstance(value, str), f"not text: {value!r}"
    event = InboundMessage(
        user_jid="alice@example.org",
        contact="contact",
        body=body,
        subject=subject,
        nick=nick,
        remote_id=remote_id,
    )
    xml = xml_safe(
        message_xml(
            event,
            to="alice@example.org",
            sender="contact@gw.example.org",
            msg_id="m1",
            domain="gw.example.org",
        )
    )
    stanza = ET.fromstring(xml)  # raises ParseError if the stream would break
    shown = stanza.findtext("body")
    assert (shown or "") == (_xml_normalised(body) if body else "")
    if subject is not None:
        assert stanza.findtext("subject") == _xml_normalised(subject)
    if nick:
        assert stanza.findtext("{http://jabber.org/protocol/nick}nick") == _xml_normalised(nick)
