"""How texts are cut so that every stanza the gateway writes fits ``xmpp.max_stanza_bytes``.

A stanza past the XMPP server's limit makes it close the component's stream (Prosody: 512 KiB,
ejabberd: 256 KiB), and an event waiting in the inbound queue would do it again after every
reconnect: one large mail stopped all mail. So every event is bounded when it is accepted,
before it is stored, whichever transport it comes from; what is stored is already within bound.

Sizes are counted as the server reads them: UTF-8 bytes after escaping, with what XML cannot
carry counting nothing (it is dropped on the way out, component/outgoing.py). Each character is
counted at the widest escape any of the gateway's writers uses (slixmpp escapes quotes in text
too), so a bound holds whichever writer sends the text. A cut falls between two characters of
the text, before escaping, so it never splits an escape nor a UTF-8 sequence.

What is cut:
- the body, to what the rest of the stanza leaves, with a marker saying so and where the full
  text is (the caller stores it, see :func:`needs_link` and :func:`with_link`);
- other texts (subject, status, nick, thread, …) to a share of the bound, with an ellipsis;
- ids to a digest of themselves (a cut id could collide; a digest stays the same id each time);
- an out-of-band URL too long to be a URL is left out (a cut URL would lead nowhere).

Addresses (the user's JID, the contact, the room) are not cut: JID rules bound them, and a JID
past them cannot be written at all.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

from component.outgoing import xml_safe

#: Bytes for each character an escape widens (``&quot;``…); the rest count their UTF-8 bytes.
_TEXT_WIDTH = {"&": 5, "<": 4, ">": 4, '"': 6, "'": 6}
#: In an attribute, white space is escaped too (``&#10;``), or a parser would fold it.
_ATTR_WIDTH = {**_TEXT_WIDTH, "\n": 5, "\r": 5, "\t": 4}
#: Tags, namespaces, a timestamp: everything in a stanza that is not a field of the event.
#: The largest the gateway writes (a room presence or a message with every extension) is
#: under 700 bytes.
OVERHEAD_BYTES = 1024
#: Every field but the body counts at most this many times its UTF-8 size: its widest escape
#: (a quote, 6 bytes) or XEP-0106 escaping of an address (3 bytes per character).
FIELD_FACTOR = 6
#: The most bytes one character can take in a stanza: an escape (``&quot;``) is 6, a UTF-8
#: sequence 4. A text at most ``limit // WIDEST`` characters long fits without counting.
WIDEST = 6
#: The domain appears in the sender's JID, the delay and the stanza-id.
DOMAIN_COPIES = 4
#: An out-of-band URL longer than this is left out.
MAX_URL_BYTES = 2048
ELLIPSIS = " […]"

LONG_FIELDS = ("body",)
PROSE_FIELDS = frozenset({"subject", "status", "text", "reason"})
NAME_FIELDS = frozenset({"nick", "new_nick", "inviter", "thread", "show", "message_type", "on"})
ID_FIELDS = frozenset({"xmpp_id", "remote_id", "stanza_id", "origin_id"})


def escaped_size(text: str, *, attribute: bool = True) -> int:
    """Bytes ``text`` takes in a stanza, at its widest escape (as an element's text when not
    ``attribute``: a body is never written as an attribute)."""
    clean = xml_safe(text)
    widths = _ATTR_WIDTH if attribute else _TEXT_WIDTH
    return len(clean.encode()) + sum(clean.count(char) * (w - 1) for char, w in widths.items())


def fits(text: str, max_bytes: int, *, attribute: bool = True) -> bool:
    """Whether ``text`` takes at most ``max_bytes`` in a stanza.

    Every accepted event passes here several times, and nearly every text is far below its
    bound: its length alone says so, without the scan :func:`escaped_size` makes.
    """
    return len(text) * WIDEST <= max_bytes or escaped_size(text, attribute=attribute) <= max_bytes


def cut(text: str, max_bytes: int, *, attribute: bool = True) -> str:
    """The longest start of ``text`` that takes at most ``max_bytes`` in a stanza."""
    if fits(text, max_bytes, attribute=attribute):
        return text
    low, high = 0, len(text)  # text[:low] fits, text[:high] does not
    while high - low > 1:
        middle = (low + high) // 2
        if escaped_size(text[:middle], attribute=attribute) <= max_bytes:
            low = middle
        else:
            high = middle
    return text[:low]


def prose_cap(max_stanza_bytes: int) -> int:
    """The most a subject, status or reason may take."""
    return min(max_stanza_bytes // 8, 8192)


def name_cap(max_stanza_bytes: int) -> int:
    """The most a nick, thread or id may take (a nick becomes a JID resource: 1023 bytes)."""
    return min(max_stanza_bytes // 32, 1023)


_field_names: dict[type, tuple[str, ...]] = {}


def field_names(event: Any) -> tuple[str, ...]:
    """The fields of an event's class, read once: ``dataclasses.fields`` builds them anew on
    each call, and every accepted event is looked at field by field twice."""
    kind = type(event)
    names = _field_names.get(kind)
    if names is None:
        names = _field_names[kind] = tuple(item.name for item in dataclasses.fields(event))
    return names


def bound_fields(event: Any, max_stanza_bytes: int) -> Any:
    """``event`` with every text but the body within its share of the bound."""
    changes: dict[str, Any] = {}
    prose, name = prose_cap(max_stanza_bytes), name_cap(max_stanza_bytes)
    for field in field_names(event):
        value = getattr(event, field)
        if field == "oob_urls":
            kept = tuple(url for url in value if fits(url, MAX_URL_BYTES))
            if kept != value:
                changes[field] = kept
        elif not isinstance(value, str):
            continue
        elif field in ID_FIELDS:
            if not fits(value, name):
                changes[field] = "h-" + hashlib.sha256(value.encode("utf-8", "replace")).hexdigest()
        elif field in PROSE_FIELDS or field in NAME_FIELDS:
            cap = prose if field in PROSE_FIELDS else name
            if not fits(value, cap):
                changes[field] = cut(value, cap - escaped_size(ELLIPSIS)) + ELLIPSIS
    return dataclasses.replace(event, **changes) if changes else event


def envelope_bytes(event: Any, domain: str) -> int:
    """At most what a stanza for ``event`` takes besides its body.

    A tuple field counts its largest item: one stanza carries one of the user's resources,
    and one out-of-band URL.
    """
    size = OVERHEAD_BYTES + DOMAIN_COPIES * len(domain.encode())
    for field in field_names(event):
        if field in LONG_FIELDS:
            continue
        value = getattr(event, field)
        if isinstance(value, str):
            size += FIELD_FACTOR * len(value.encode("utf-8", "replace"))
        elif isinstance(value, tuple):
            size += FIELD_FACTOR * max(
                (len(str(part).encode("utf-8", "replace")) for part in value), default=0
            )
        elif value is not None:
            size += FIELD_FACTOR * len(str(value))
    return size


def body_budget(event: Any, max_stanza_bytes: int, domain: str) -> int:
    """What the body of ``event`` may take once the rest of the stanza is counted."""
    return max_stanza_bytes - envelope_bytes(event, domain)


def needs_link(event: Any, max_stanza_bytes: int, domain: str) -> bool:
    """Whether the body is too long: the caller then stores it whole and calls with_link."""
    body = getattr(event, "body", None)
    return isinstance(body, str) and not fits(
        body, body_budget(event, max_stanza_bytes, domain), attribute=False
    )


def cut_marker(total_characters: int, url: str) -> str:
    """What ends a cut body: says it was cut, how long the whole is, and where to read it."""
    return (
        f"\n\n[Cut here: this message was too long for XMPP. The full text "
        f"({total_characters} characters) is at {url} ]"
    )


def with_link(event: Any, max_stanza_bytes: int, domain: str, url: str) -> Any:
    """``event`` with its body cut to fit, ending with a marker that links to the full text."""
    body: str = event.body
    marker = cut_marker(len(body), url)
    room = body_budget(event, max_stanza_bytes, domain) - escaped_size(marker, attribute=False)
    return dataclasses.replace(event, body=cut(body, max(room, 0), attribute=False) + marker)
