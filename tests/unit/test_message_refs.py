"""Corrections, retractions, reactions and replies: read as clients send them, written back."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import strategies as st

from component.message_refs import (
    MAX_REACTIONS,
    RETRACTION_FALLBACK,
    refers_of,
    refers_parts,
    shared_link,
)
from component.render import message_xml
from transports.events import InboundMessage, Refers

CLIENT = 'xmlns="jabber:client"'


def stanza(inner: str) -> ET.Element:
    return ET.fromstring(f"<message {CLIENT} to='+1555@sms.example.org'>{inner}</message>")


def read(inner: str, body: str = "") -> tuple[str, Refers | None]:
    return refers_of(stanza(inner), body)


def test_a_plain_message_refers_to_nothing() -> None:
    assert read("<body>hi</body>", "hi") == ("hi", None)


def test_a_correction_as_conversations_sends_it() -> None:
    inner = "<body>hello</body><replace xmlns='urn:xmpp:message-correct:0' id='m-1'/>"
    assert read(inner, "hello") == ("hello", Refers("correction", "m-1"))


def test_a_retraction_of_xep_0424_1_and_of_its_fastening_form() -> None:
    new = (
        "<retract xmlns='urn:xmpp:message-retract:1' id='m-2'/>"
        "<fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:message-retract:1'/>"
        "<body>/me retracted a message</body>"
    )
    assert read(new, "/me retracted a message") == ("", Refers("retraction", "m-2"))
    old = (
        "<apply-to xmlns='urn:xmpp:fasten:0' id='m-3'>"
        "<retract xmlns='urn:xmpp:message-retract:0'/></apply-to>"
    )
    assert read(old) == ("", Refers("retraction", "m-3"))


def test_a_file_shared_without_a_body_is_its_link() -> None:
    oob = "<x xmlns='jabber:x:oob'><url> https://up.example.org/a/b.jpg </url></x>"
    assert shared_link(stanza(oob), "") == "https://up.example.org/a/b.jpg"
    # With a body (the usual form: the link again), the body stays what the client wrote.
    assert shared_link(stanza(f"<body>look</body>{oob}"), "look") == "look"
    assert shared_link(stanza("<x xmlns='jabber:x:oob'/>"), "") == ""
    assert shared_link(stanza("<active xmlns='http://jabber.org/protocol/chatstates'/>"), "") == ""


def test_reactions_are_the_whole_set_without_repeats_or_blanks() -> None:
    inner = (
        "<reactions xmlns='urn:xmpp:reactions:0' id='m-4'>"
        "<reaction>👍</reaction><reaction> </reaction><reaction>👍</reaction>"
        "<reaction>❤️</reaction></reactions>"
    )
    assert read(inner) == ("", Refers("reaction", "m-4", reactions=("👍", "❤️")))
    removed_all = "<reactions xmlns='urn:xmpp:reactions:0' id='m-4'/>"
    assert read(removed_all) == ("", Refers("reaction", "m-4"))


def test_a_flood_of_reactions_is_cut_to_a_handful_of_short_ones() -> None:
    many = "".join(f"<reaction>{n}{'x' * 100}</reaction>" for n in range(500))
    _, refers = read(f"<reactions xmlns='urn:xmpp:reactions:0' id='m'>{many}</reactions>")
    assert refers is not None
    assert len(refers.reactions) == MAX_REACTIONS
    assert all(len(reaction) <= 16 for reaction in refers.reactions)


def test_a_reply_loses_its_fallback_quote_and_keeps_it_apart() -> None:
    body = "> Alice wrote:\n> see you at 5?\nyes, 5 is fine"
    fallback_end = len("> Alice wrote:\n> see you at 5?\n")
    inner = (
        f"<body>{body}</body>"
        "<reply xmlns='urn:xmpp:reply:0' to='alice@example.org/phone' id='m-5'/>"
        "<fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:reply:0'>"
        f"<body start='0' end='{fallback_end}'/></fallback>"
    )
    text, refers = read(inner, body)
    assert text == "yes, 5 is fine"
    assert refers == Refers(
        "reply", "m-5", quote="Alice wrote:\nsee you at 5?", target_jid="alice@example.org/phone"
    )


def test_fallback_ranges_count_code_points_not_bytes() -> None:
    quote = "> 🎉 party 🎉\n"
    body = quote + "🙂 coming"
    inner = (
        "<reply xmlns='urn:xmpp:reply:0' id='m-6'/>"
        "<fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:reply:0'>"
        f"<body start='0' end='{len(quote)}'/></fallback>"
    )
    assert read(inner, body)[0] == "🙂 coming"


@pytest.mark.parametrize(
    "range_attrs", ["start='0' end='999'", "start='5' end='2'", "start='x' end='3'", ""]
)
def test_a_fallback_range_that_does_not_fit_leaves_the_body_alone(range_attrs: str) -> None:
    body = "> q\nanswer"
    inner = (
        "<reply xmlns='urn:xmpp:reply:0' id='m-7'/>"
        "<fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:reply:0'>"
        f"<body {range_attrs}/></fallback>"
    )
    text, refers = read(inner, body)
    assert refers is not None and refers.kind == "reply"
    assert text == body


def test_a_fallback_for_something_else_is_not_cut() -> None:
    inner = (
        "<reply xmlns='urn:xmpp:reply:0' id='m-8'/>"
        "<fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:other'>"
        "<body start='0' end='3'/></fallback>"
    )
    assert read(inner, "> q\nanswer")[0] == "> q\nanswer"


@pytest.mark.parametrize("bad_id", ["", "   ", "x" * 300])
def test_an_empty_or_absurd_id_is_as_if_there_were_no_element(bad_id: str) -> None:
    inner = f"<replace xmlns='urn:xmpp:message-correct:0' id='{bad_id}'/>"
    assert read(inner, "hi") == ("hi", None)


def test_one_message_does_one_thing_retraction_first() -> None:
    inner = (
        "<replace xmlns='urn:xmpp:message-correct:0' id='a'/>"
        "<reactions xmlns='urn:xmpp:reactions:0' id='b'><reaction>👍</reaction></reactions>"
        "<retract xmlns='urn:xmpp:message-retract:1' id='c'/>"
    )
    assert read(inner, "x") == ("", Refers("retraction", "c"))


def rendered(refers: Refers, body: str = "") -> ET.Element:
    event = InboundMessage("alice@example.org", "+15551234567", body, refers=refers)
    xml = message_xml(
        event,
        to="alice@example.org",
        sender="+15551234567@sms.example.org",
        msg_id="i-1",
        domain="sms.example.org",
    )
    return ET.fromstring(xml.replace("<message ", f"<message {CLIENT} ", 1))


def test_what_is_written_reads_back_the_same() -> None:
    for refers, body in [
        (Refers("correction", "m-1"), "fixed text"),
        (Refers("retraction", "m-2"), ""),
        (Refers("reaction", "m-3", reactions=("👍", "😂")), ""),
        (Refers("reaction", "m-3"), ""),
        (Refers("reply", "m-4", quote="line one\nline two", target_jid="a@b/c"), "answer"),
        (Refers("reply", "m-5"), "answer without quote"),
    ]:
        element = rendered(refers, body)
        body_element = element.find("{jabber:client}body")
        sent_body = body_element.text if body_element is not None else ""
        assert refers_of(element, sent_body or "") == (body, refers)


def test_a_reply_quote_is_a_marked_fallback_at_the_top_of_the_body() -> None:
    element = rendered(Refers("reply", "m-4", quote="see you at 5?"), "yes")
    assert element.findtext("{jabber:client}body") == "> see you at 5?\nyes"
    part = element.find("{urn:xmpp:fallback:0}fallback/{urn:xmpp:fallback:0}body")
    assert part is not None and (part.get("start"), part.get("end")) == ("0", "16")


def test_retractions_and_reactions_ask_archives_to_keep_them() -> None:
    retraction = rendered(Refers("retraction", "m-2"))
    assert retraction.findtext("{jabber:client}body") == RETRACTION_FALLBACK
    assert retraction.find("{urn:xmpp:hints}store") is not None
    reaction = rendered(Refers("reaction", "m-3", reactions=("👍",)))
    assert reaction.find("{jabber:client}body") is None
    assert reaction.find("{urn:xmpp:hints}store") is not None


@given(
    target=st.text(min_size=1, max_size=40).filter(lambda t: t.strip() == t and t),
    quote=st.text(max_size=60),
    body=st.text(max_size=60),
    emojis=st.lists(st.text(min_size=1, max_size=4), max_size=5),
)
def test_any_text_is_escaped_into_well_formed_xml(
    target: str, quote: str, body: str, emojis: list[str]
) -> None:
    def xml_char(c: str) -> bool:
        return c in "\t\n" or (" " <= c <= "\ud7ff") or ("\ue000" <= c <= "\ufffd") or c > "\uffff"

    target, quote, body = (
        "".join(filter(xml_char, value)) or "x" for value in (target, quote, body)
    )
    emojis = ["".join(filter(xml_char, e)) or "x" for e in emojis]
    for refers in (
        Refers("reply", target, quote=quote),
        Refers("reaction", target, reactions=tuple(emojis)),
        Refers("correction", target),
    ):
        body_out, children = refers_parts(refers, body)
        ET.fromstring(f"<m xmlns='jabber:client'>{children}</m>")  # well formed
        assert body_out.endswith(body)
