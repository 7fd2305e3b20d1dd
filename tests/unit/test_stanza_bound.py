"""Every stanza fits the bound, whatever text comes in (component/stanza_bound.py)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from slixmpp import ComponentXMPP
from slixmpp.xmlstream.tostring import tostring

from component.outgoing import xml_safe
from component.render import message_xml
from component.stanza_bound import (
    ELLIPSIS,
    bound_fields,
    cut,
    escaped_size,
    needs_link,
    with_link,
)
from transports.events import ContactPresence, InboundMessage
from transports.rooms import RoomMessage

DOMAIN = "mail.example.org"
TO = "alice@example.org"
SENDER = f"juliet\\40capulet.lit@{DOMAIN}"
URL = "http://127.0.0.1:8080/media/" + "T" * 43 + ".txt"
SMALLEST = 4096  # the smallest bound the config allows

_component = ComponentXMPP(DOMAIN, "secret", "127.0.0.1", 5347)
_component.register_plugin("xep_0359")

#: Any code point: what XML cannot carry, lone surrogates, what escaping widens, and
#: characters of 2 to 4 UTF-8 bytes.
any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=3000)
wide_text = st.text(st.sampled_from("&<>\"'\n\r\t\x00\ud800é€𝄞a"), max_size=3000)
texts = any_text | wide_text


def wire_size(xml: str) -> int:
    """Bytes on the wire: as send_raw writes it."""
    return len(xml_safe(xml).encode())


def bounded(event: Any, max_bytes: int) -> Any:
    event = bound_fields(event, max_bytes)
    if needs_link(event, max_bytes, DOMAIN):
        event = with_link(event, max_bytes, DOMAIN, URL)
    return event


@settings(max_examples=300, deadline=None)
@given(
    body=texts,
    subject=st.none() | texts,
    thread=st.none() | texts,
    nick=st.none() | texts,
    url=texts,
    remote_id=st.none() | texts,
    xmpp_id=texts,
    max_bytes=st.sampled_from([SMALLEST, 6000, 20000, 131072]),
)
def test_a_message_stanza_never_exceeds_the_bound(
    body: str,
    subject: str | None,
    thread: str | None,
    nick: str | None,
    url: str,
    remote_id: str | None,
    xmpp_id: str,
    max_bytes: int,
) -> None:
    # Repeated, so that the body is over the bound whatever it holds.
    event = InboundMessage(
        TO,
        "juliet@capulet.lit",
        (body or "&") * (2 * max_bytes // max(len(body), 1) + 1),
        remote_id=remote_id,
        xmpp_id=xmpp_id,
        subject=None if subject is None else subject * 20,
        thread=thread,
        oob_urls=(url * 3,),
        nick=nick,
        timestamp=1.7e9,
    )
    event = bounded(event, max_bytes)
    assert event.xmpp_id is not None
    xml = message_xml(event, to=TO, sender=SENDER, msg_id=event.xmpp_id, domain=DOMAIN)
    assert wire_size(xml) <= max_bytes
    # ... and as slixmpp writes the same texts (room messages, presences go that way).
    msg: Any = _component.make_message(
        mto=TO, mfrom=SENDER, mbody=event.body, msubject=event.subject
    )
    msg["id"] = event.xmpp_id
    msg["origin_id"]["id"] = event.xmpp_id
    assert wire_size(tostring(msg.xml, stream=_component, top_level=True)) <= max_bytes


@settings(max_examples=100, deadline=None)
@given(status=texts, show=texts)
def test_a_presence_never_exceeds_the_bound(status: str, show: str) -> None:
    event = bound_fields(
        ContactPresence(TO, "juliet@capulet.lit", True, show, status * 100), SMALLEST
    )
    presence = _component.make_presence(
        pto=TO, pfrom=SENDER, pshow=event.show or None, pstatus=event.status or None
    )
    assert wire_size(tostring(presence.xml, stream=_component, top_level=True)) <= SMALLEST


def test_a_long_body_is_cut_with_a_marker_and_a_link() -> None:
    body = "line of mail text\n" * 40_000  # 720 kB
    event = bounded(InboundMessage(TO, "juliet@capulet.lit", body, xmpp_id="m1"), 131072)
    assert event.body.startswith("line of mail text\n" * 100)
    assert event.body.endswith(f"The full text ({len(body)} characters) is at {URL} ]")
    assert "[Cut here: this message was too long for XMPP." in event.body
    xml = message_xml(event, to=TO, sender=SENDER, msg_id="m1", domain=DOMAIN)
    assert 131072 - 2048 < wire_size(xml) <= 131072  # cut near the bound, not far below
    assert ET.fromstring(xml).findtext("body") == event.body


def test_a_body_that_fits_is_left_alone() -> None:
    event = InboundMessage(TO, "juliet@capulet.lit", "<&>" * 1000, xmpp_id="m1")
    assert bounded(event, 131072) == event


def test_a_cut_never_splits_an_escape_or_a_character() -> None:
    text = "a&€𝄞" * 10
    for limit in range(0, 120):
        start = cut(text, limit)
        assert text.startswith(start)
        assert escaped_size(start) <= limit
        # the next character would not have fitted: the longest start that fits
        assert start == text or escaped_size(text[: len(start) + 1]) > limit


def test_what_xml_cannot_carry_counts_nothing() -> None:
    assert escaped_size("\x00\x1b\ud800") == 0
    assert escaped_size('&"\n') == 5 + 6 + 5
    assert escaped_size("é𝄞") == 2 + 4


def test_long_names_and_subjects_are_cut_with_an_ellipsis_ids_become_digests() -> None:
    event = bound_fields(
        RoomMessage(TO, "#c%irc", ("phone",), "n" * 5000, "hi", xmpp_id="i" * 5000),
        131072,
    )
    assert event.nick.endswith(ELLIPSIS) and escaped_size(event.nick) <= 1023
    assert event.xmpp_id.startswith("h-") and len(event.xmpp_id) < 100
    again = bound_fields(
        RoomMessage(TO, "#c%irc", ("phone",), "n" * 5000, "hi", xmpp_id="i" * 5000), 131072
    )
    assert again.xmpp_id == event.xmpp_id  # the same id for the same event, every time


def test_an_overlong_url_is_left_out_not_cut() -> None:
    event = InboundMessage(TO, "j", "x", oob_urls=("http://a/" + "p" * 5000, "http://b/"))
    assert bound_fields(event, 131072).oob_urls == ("http://b/",)
