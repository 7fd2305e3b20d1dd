"""RFC 9078 reaction mails, written and read; a malformed one is an ordinary mail."""

from __future__ import annotations

from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import pytest

from transports.email.incoming_mail import read_mail
from transports.email.outgoing_mail import Envelope, compose
from transports.email.reactions import MAX_EMOJIS, fallback_text, read_reaction, split_emojis

ENVELOPE = Envelope(
    message_id="<r1@mail.example.org>",
    from_address="alice@mail.example.org",
    from_name="Alice",
    to_address="juliet@capulet.lit",
    subject="Re: Balcony",
    in_reply_to="<m1@capulet.lit>",
    references=("<m1@capulet.lit>",),
    date=1_700_000_000,
)


def _parsed(message: EmailMessage) -> EmailMessage:
    parsed = BytesParser(policy=policy.default).parsebytes(message.as_bytes())
    assert isinstance(parsed, EmailMessage)
    return parsed


@pytest.mark.parametrize(
    ("text", "emojis"),
    [
        ("👍", ("👍",)),
        ("👍 ❤️\r\n", ("👍", "❤️")),
        ("👍❤️", ("👍", "❤️")),  # adjacent: cut into emoji all the same
        ("👍🏽", ("👍🏽",)),  # a skin tone stays with its emoji
        ("👨\u200d👩\u200d👧", ("👨\u200d👩\u200d👧",)),  # a family is one emoji
        ("🇫🇷 1️⃣", ("🇫🇷", "1️⃣")),  # a flag, a keycap
        ("👍 👍", ("👍",)),  # a set: once each
        ("", ()),  # Delta Chat's "taken back"
    ],
)
def test_a_line_of_emoji_is_split_into_reactions(text: str, emojis: tuple[str, ...]) -> None:
    assert split_emojis(text) == emojis


@pytest.mark.parametrize(
    "text",
    ["+1", "like", "👍 great", "👍\n👍", "<b>👍</b>", "1", "ä", "🇫", "👍 " * 250],
    ids=[
        "plus-one",
        "word",
        "emoji-and-word",
        "two-lines",
        "markup",
        "digit",
        "letter",
        "half-a-flag",
        "too-long",
    ],
)
def test_anything_but_emoji_is_no_reaction(text: str) -> None:
    assert split_emojis(text) is None


def test_a_set_is_cut_to_a_handful() -> None:
    many = " ".join(chr(0x1F600 + index) for index in range(MAX_EMOJIS + 5))
    assert split_emojis(many) == tuple(chr(0x1F600 + i) for i in range(MAX_EMOJIS))


def test_a_reaction_mail_is_built_as_rfc_9078_says() -> None:
    text = fallback_text("Alice", ("👍", "❤️"), "> Wherefore art thou?")
    mail = _parsed(compose(ENVELOPE, text, reaction=("👍", "❤️")))
    assert mail.get_content_type() == "multipart/mixed"
    assert str(mail["In-Reply-To"]) == "<m1@capulet.lit>"
    fallback, reaction = mail.iter_parts()
    assert fallback.get_content_type() == "text/plain"
    assert fallback.get_content_disposition() is None  # shown by every mail client
    assert fallback.get_content() == (
        "Alice reacted 👍 ❤️ to your message:\n\n> Wherefore art thou?\n"
    )
    assert reaction.get_content_type() == "text/plain"
    assert reaction.get_content_charset() == "utf-8"
    assert reaction.get_content_disposition() == "reaction"
    assert reaction.get_content() == "👍 ❤️\n"
    assert read_reaction(mail) == ("👍", "❤️")


def test_taking_reactions_back_is_an_empty_reaction_part() -> None:
    text = fallback_text("Alice", (), "")
    mail = _parsed(compose(ENVELOPE, text, reaction=()))
    fallback = mail.get_body(("plain",))
    assert fallback is not None
    assert fallback.get_content() == "Alice took back their reaction to your message.\n"
    assert read_reaction(mail) == ()


def test_a_reaction_mail_is_read_from_the_wire() -> None:
    raw = (
        b"From: Juliet <juliet@capulet.lit>\r\nTo: alice@mail.example.org\r\n"
        b"Message-ID: <react-1@capulet.lit>\r\nIn-Reply-To: <out-1@mail.example.org>\r\n"
        b"Subject: Re: Balcony\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Disposition: reaction\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\n\xf0\x9f\x91\x8d\r\n"
    )
    mail = read_mail(raw)
    assert mail.reaction == ("👍",)
    assert mail.in_reply_to == ("<out-1@mail.example.org>",)


def _mail(disposition: str, content: str, content_type: str = "plain", **headers: str) -> bytes:
    message = EmailMessage()
    message["From"] = "juliet@capulet.lit"
    message["Message-ID"] = "<x@capulet.lit>"
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content("fallback words")
    part = EmailMessage()
    part.set_content(content, subtype=content_type, disposition=disposition)
    message.make_mixed()
    message.attach(part)
    return message.as_bytes()


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(_mail("reaction", "👍"), id="no-in-reply-to"),
        pytest.param(_mail("reaction", "I like it", In_Reply_To="<m@x>"), id="words"),
        pytest.param(_mail("reaction", "👍", "html", In_Reply_To="<m@x>"), id="html-part"),
        pytest.param(_mail("reaction", "👍\n👎", In_Reply_To="<m@x>"), id="two-lines"),
        pytest.param(_mail("inline", "👍", In_Reply_To="<m@x>"), id="not-a-reaction-part"),
        pytest.param(_mail("reaction", "👍", In_Reply_To="not an id"), id="bad-in-reply-to"),
    ],
)
def test_a_malformed_reaction_is_an_ordinary_mail(raw: bytes) -> None:
    mail = read_mail(raw)
    assert mail.reaction is None
    assert mail.text == "fallback words"
