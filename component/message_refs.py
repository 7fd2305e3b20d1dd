"""Corrections, retractions, reactions and replies, read from stanzas and written into them.

Modern clients send these as children of ``<message/>``: XEP-0308 ``<replace/>``, XEP-0424
``<retract/>``, XEP-0444 ``<reactions/>``, XEP-0461 ``<reply/>`` with its XEP-0428 fallback
(the quoted lines the client put at the top of the body for clients that know no replies).
Both directions meet in one :class:`~transports.events.Refers`, so a transport sees what a
message does, never the XML. Pure functions (and one stanza matcher): no I/O here.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from slixmpp import Message
from slixmpp.xmlstream import StanzaBase
from slixmpp.xmlstream.matcher.base import MatcherBase

from component.xml_text import attr as _attr
from component.xml_text import text as _text
from transports.events import Refers

NS_CORRECT = "urn:xmpp:message-correct:0"
NS_RETRACT = "urn:xmpp:message-retract:1"
#: the earlier form of retraction (XEP-0424 0.3, through XEP-0422 fastening), still sent by
#: clients of 2023
NS_RETRACT_0 = "urn:xmpp:message-retract:0"
NS_FASTEN = "urn:xmpp:fasten:0"
NS_REACTIONS = "urn:xmpp:reactions:0"
NS_REPLY = "urn:xmpp:reply:0"
NS_FALLBACK = "urn:xmpp:fallback:0"
NS_HINTS = "urn:xmpp:hints"
NS_OOB = "jabber:x:oob"

#: What a contact JID and the gateway say they understand (disco#info).
FEATURES = (NS_CORRECT, NS_RETRACT, NS_REACTIONS, NS_REPLY, NS_FALLBACK)

#: XEP-0444 asks for single emoji; a client (or an attacker) may send anything, so a
#: reaction is cut to a few grapheme's worth and a set to a handful.
MAX_REACTION_CHARS = 16
MAX_REACTIONS = 20
#: ids are the other side's tokens; nothing of ours is longer
MAX_ID_CHARS = 256

#: What a client that knows no retraction shows (XEP-0424's own fallback wording).
RETRACTION_FALLBACK = (
    "This person attempted to retract a previous message, but it's unsupported by your client."
)


def shared_link(message: ET.Element, body: str) -> str:
    """The body, or, for a file shared with no body, the file's link (XEP-0066 ``<url/>``).

    Clients put the link in the body too (Conversations, Gajim, Dino), and a network that
    carries text shows that; a client that sends the OOB element alone must not be dropped
    on those networks, so its link becomes the body it did not send.
    """
    if body:
        return body
    return (message.findtext(f"{{{NS_OOB}}}x/{{{NS_OOB}}}url") or "").strip()


def refers_of(message: ET.Element, body: str) -> tuple[str, Refers | None]:
    """What ``message`` does to an earlier message, and its body without reply fallback.

    One message does one thing: a retraction wins over a reaction, a reaction over a
    correction, a correction over a reply (a corrected reply is carried as a correction,
    which is what the reader on the other side sees change). Ids that are empty or absurdly
    long are ignored, as if the element were not there.
    """
    retract = message.find(f"{{{NS_RETRACT}}}retract")
    if retract is None:
        fasten = message.find(f"{{{NS_FASTEN}}}apply-to")
        if fasten is not None and fasten.find(f"{{{NS_RETRACT_0}}}retract") is not None:
            retract = fasten
    target = _id(retract)
    if target:
        return "", Refers("retraction", target)
    reactions = message.find(f"{{{NS_REACTIONS}}}reactions")
    target = _id(reactions)
    if reactions is not None and target:
        return "", Refers("reaction", target, reactions=_emojis(reactions))
    target = _id(message.find(f"{{{NS_CORRECT}}}replace"))
    if target:
        return body, Refers("correction", target)
    reply = message.find(f"{{{NS_REPLY}}}reply")
    target = _id(reply)
    if reply is not None and target:
        text, quote = without_fallback(message, body, NS_REPLY)
        return text, Refers("reply", target, quote=unquoted(quote), target_jid=reply.get("to", ""))
    return body, None


def _id(element: ET.Element | None) -> str:
    if element is None:
        return ""
    value = (element.get("id") or "").strip()
    return value if len(value) <= MAX_ID_CHARS else ""


def _emojis(reactions: ET.Element) -> tuple[str, ...]:
    seen: list[str] = []
    for reaction in reactions.findall(f"{{{NS_REACTIONS}}}reaction"):
        text = (reaction.text or "").strip()[:MAX_REACTION_CHARS]
        if text and text not in seen:
            seen.append(text)
        if len(seen) == MAX_REACTIONS:
            break
    return tuple(seen)


def without_fallback(message: ET.Element, body: str, for_ns: str) -> tuple[str, str]:
    """``body`` without the XEP-0428 fallback marked for ``for_ns``, and the part cut out.

    Ranges count Unicode code points (XEP-0426), as Python's ``str`` does. A range that does
    not fit the body is ignored: the body then goes as the client wrote it.
    """
    for fallback in message.findall(f"{{{NS_FALLBACK}}}fallback"):
        if fallback.get("for") != for_ns:
            continue
        ranges = fallback.findall(f"{{{NS_FALLBACK}}}body")
        if not ranges:
            return "", body  # the whole body is the fallback
        for part in ranges:
            try:
                start, end = int(part.get("start", "")), int(part.get("end", ""))
            except ValueError:
                continue
            if 0 <= start <= end <= len(body):
                return (body[:start] + body[end:]).lstrip("\n"), body[start:end]
    return body, ""


def unquoted(quote: str) -> str:
    """The text of ``> `` quoted lines, as a reply's fallback quotes the earlier message."""
    lines = [
        line[1:].removeprefix(" ") if line.startswith(">") else line for line in quote.splitlines()
    ]
    return "\n".join(lines).strip()


def quoted(text: str) -> str:
    """``text`` as a reply's fallback quotes it: each line behind ``> ``, then a new line."""
    return "".join(f"> {line}\n" for line in text.splitlines() or [""])


def refers_parts(refers: Refers, body: str) -> tuple[str, str]:
    """The body to send and the XML children that say what ``refers`` does, as text.

    A reply with a quote carries it in the body, marked as fallback (XEP-0428), so clients
    that know replies show the quote from the earlier message and the others show the lines.
    Retractions and reactions ask to be stored (XEP-0334): they have no body, and archives
    keep only what has one unless asked.
    """
    target = _attr(refers.target)
    if refers.kind == "correction":
        return body, f'<replace xmlns="{NS_CORRECT}" id={target} />'
    if refers.kind == "retraction":
        return body or RETRACTION_FALLBACK, (
            f'<retract xmlns="{NS_RETRACT}" id={target} />'
            f'<fallback xmlns="{NS_FALLBACK}" for="{NS_RETRACT}" />'
            f'<store xmlns="{NS_HINTS}" />'
        )
    if refers.kind == "reaction":
        inner = "".join(f"<reaction>{_text(emoji)}</reaction>" for emoji in refers.reactions)
        return body, (
            f'<reactions xmlns="{NS_REACTIONS}" id={target}>{inner}</reactions>'
            f'<store xmlns="{NS_HINTS}" />'
        )
    to = f" to={_attr(refers.target_jid)}" if refers.target_jid else ""
    reply = f'<reply xmlns="{NS_REPLY}"{to} id={target} />'
    if not refers.quote:
        return body, reply
    fallback = quoted(refers.quote)
    return fallback + body, (
        f'{reply}<fallback xmlns="{NS_FALLBACK}" for="{NS_REPLY}">'
        f'<body start="0" end="{len(fallback)}" /></fallback>'
    )


def with_refers(stanza: ET.Element, refers: Refers | None, body: str) -> str:
    """Add to a stanza being built what ``refers`` does; return the body it should carry."""
    if refers is None:
        return body
    body, children = refers_parts(refers, body)
    stanza.extend(ET.fromstring(f"<refers>{children}</refers>"))
    return body


class BodilessRefers(MatcherBase):
    """Reactions, retractions and shared files sent without a body: slixmpp raises its
    "message" event only for messages with one, so these need a handler of their own (with a
    body, the message handler takes them, and this one must not take them twice)."""

    def match(self, xml: StanzaBase) -> bool:
        if not isinstance(xml, Message) or xml["body"]:
            return False
        element = xml.xml
        return (
            element.find(f"{{{NS_REACTIONS}}}reactions") is not None
            or element.find(f"{{{NS_RETRACT}}}retract") is not None
            or element.find(f"{{{NS_FASTEN}}}apply-to") is not None
            or element.find(f"{{{NS_OOB}}}x") is not None
        )
