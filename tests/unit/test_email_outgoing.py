"""Composing outgoing mail: headers fixed once, subjects, References chains, rate limits."""

from __future__ import annotations

from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

from transports.email.outgoing_mail import (
    MAX_REFERENCES,
    Envelope,
    body_with_links,
    choose_subject,
    compose,
    new_message_id,
    reply_subject,
    thread_references,
)
from transports.email.rate_limit import RateLimit


def _parsed(message: EmailMessage) -> EmailMessage:
    parsed = BytesParser(policy=policy.default).parsebytes(message.as_bytes())
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_composed_mail_headers_and_utf8_body() -> None:
    envelope = Envelope(
        message_id="<m1@mail.example.org>",
        from_address="alice@mail.example.org",
        from_name="Alice Liddell",
        to_address="juliet@capulet.lit",
        subject="Grüße",
        in_reply_to="<p@capulet.lit>",
        references=("<r@capulet.lit>", "<p@capulet.lit>"),
        date=1_700_000_000,
    )
    raw = compose(envelope, "Schöne Grüße\r\nline two").as_bytes()
    assert raw.isascii()  # quoted-printable: safe through relays without 8BITMIME
    mail = _parsed(compose(envelope, "Schöne Grüße\r\nline two"))
    assert mail["From"].addresses[0].display_name == "Alice Liddell"
    assert mail["From"].addresses[0].addr_spec == "alice@mail.example.org"
    assert str(mail["To"]) == "juliet@capulet.lit"
    assert str(mail["Subject"]) == "Grüße"
    assert str(mail["Message-ID"]) == "<m1@mail.example.org>"
    assert str(mail["In-Reply-To"]) == "<p@capulet.lit>"
    assert str(mail["References"]) == "<r@capulet.lit> <p@capulet.lit>"
    assert mail.get_content_type() == "text/plain"
    assert mail.get_content_charset() == "utf-8"
    assert mail.get_content() == "Schöne Grüße\nline two\n"


def test_envelope_survives_the_outbox_json() -> None:
    envelope = Envelope("<a@b.c>", "a@b.c", "A", "d@e.f", "s", None, ("<x@y>",), 1.5)
    assert Envelope.from_data(envelope.to_data()) == envelope


def test_header_injection_is_impossible() -> None:
    envelope = Envelope("<a@b.c>", "a@b.c", "A\r\nBcc: x@evil.example", "d@e.f", "s\r\nBcc: y")
    mail = _parsed(compose(envelope, "hi"))
    assert mail["Bcc"] is None
    assert str(mail["Subject"]) == "s Bcc: y"
    assert mail["From"].addresses[0].display_name == "A Bcc: x@evil.example"


def test_message_ids_are_at_the_gateway_domain_and_unique() -> None:
    ids = {new_message_id("mail.example.org") for _ in range(100)}
    assert len(ids) == 100
    assert all(mid.startswith("<") and mid.endswith("@mail.example.org>") for mid in ids)


def test_subject_choice() -> None:
    assert choose_subject("Tonight", "Balcony", "Message from XMPP") == "Tonight"
    assert choose_subject(None, "Balcony", "Message from XMPP") == "Re: Balcony"
    assert choose_subject("  ", "Re: RE: Balcony", "Message from XMPP") == "Re: Balcony"
    assert choose_subject(None, None, "Message from XMPP") == "Message from XMPP"
    assert choose_subject(None, "Re:", "Message from XMPP") == "Message from XMPP"
    assert reply_subject("AW: Sv: hello") == "Re: hello"


def test_references_chain() -> None:
    assert thread_references(None, ()) == ()
    assert thread_references("<p>", ()) == ("<p>",)
    assert thread_references("<p>", ("<r>", "<q>")) == ("<r>", "<q>", "<p>")
    long = tuple(f"<{n}>" for n in range(50))
    chain = thread_references("<p>", long)
    assert len(chain) == MAX_REFERENCES
    assert chain[0] == "<0>" and chain[-1] == "<p>"


def test_oob_links_travel_in_the_body_once() -> None:
    assert body_with_links("see", ("https://x/a.png",)) == "see\nhttps://x/a.png"
    assert body_with_links("https://x/a.png", ("https://x/a.png",)) == "https://x/a.png"
    assert body_with_links("", ("https://x/a.png",)) == "https://x/a.png"


def test_rate_limit_window() -> None:
    now = [0.0]
    limit = RateLimit(2, clock=lambda: now[0])
    assert limit.try_acquire("a@x") is None
    assert limit.try_acquire("a@x") is None
    assert limit.try_acquire("b@x") is None  # per user
    wait = limit.try_acquire("a@x")
    assert wait == 3600.0
    now[0] = 1800.0
    limit.release("a@x")  # a message that was not queued gives its count back
    assert limit.try_acquire("a@x") is None
    assert limit.try_acquire("a@x") == 1800.0
    now[0] = 3601.0
    assert limit.try_acquire("a@x") is None
