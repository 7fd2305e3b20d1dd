"""Received mail under fuzzing: broken MIME, odd charsets and encodings, deep nesting, raw bytes.

:func:`read_mail` is documented never to raise: a mail the gateway cannot read must still
reach the user as what could be read (the SMTP side refuses only a mail without From). So the
properties are: no exception, whatever the bytes; every text it returns renders as a stanza;
a sender it returns is a valid address that makes a contact JID; ids look like Message-IDs.
"""

from __future__ import annotations

import base64
import re
import time

from hypothesis import example, given, settings
from hypothesis import strategies as st
from support.strategies import assert_renderable, hostile_texts

from transports.email.addressing import format_contact, normalise_address
from transports.email.html_text import html_to_text
from transports.email.incoming_mail import (
    MAX_MULTIPARTS,
    TOO_MANY_PARTS,
    IncomingMail,
    read_mail,
)
from transports.email.quoting import strip_quoted_tail

FAST = settings(max_examples=120, deadline=None)
MESSAGE_ID = re.compile(r"^<[^<>\s]+>$")

words = hostile_texts(30)
CHARSETS = ["utf-8", "us-ascii", "latin-1", "utf-16", "x-unknown", "idna", "utf-7", "", "utf-8\0"]
TRANSFER = ["7bit", "8bit", "base64", "quoted-printable", "x-uuencode", "binary", "b@d"]
TYPES = [
    "text/plain",
    "text/html",
    "application/octet-stream",
    "image/png",
    "message/rfc822",
    "message/delivery-status",
    "text",
    "/",
]


def _header_text(text: str) -> bytes:
    """Header text as a mailer might write it: raw UTF-8 (test_any_bytes sends the rest)."""
    return text.encode("utf-8", "replace")


encoded_word = st.builds(
    lambda charset, kind, payload: f"=?{charset}?{kind}?{payload}?=",
    st.sampled_from(CHARSETS),
    st.sampled_from(["b", "q", "x"]),
    st.one_of(
        st.binary(max_size=20).map(lambda data: base64.b64encode(data).decode()),
        st.text(alphabet="ABC=?_-+/09", max_size=12),
    ),
)
header_value = st.lists(st.one_of(words, encoded_word), max_size=4).map(" ".join)
addresses = st.one_of(
    header_value,
    st.builds("{} <{}@{}>".format, header_value, words, words),
    st.sampled_from(
        [
            "juliet@capulet.lit",
            '"Juliet \\" C" <juliet@capulet.lit>',
            "undisclosed-recipients:;",
            "a: b@c.d, e@f.g;",
            "<@route:juliet@capulet.lit>",
            "=?utf-8?b?SnVsaWV0?= <JULIET@Capulet.LIT>",
            "juliet@[127.0.0.1]",
            "<>",
        ]
    ),
)
body_bytes = st.one_of(
    st.binary(max_size=200),
    st.binary(max_size=100).map(base64.b64encode),
    st.text(alphabet="ABCabc019+/=\r\n!", max_size=80).map(str.encode),  # broken base64
    st.text(alphabet="ab=0F\r\n \t", max_size=80).map(str.encode),  # broken quoted-printable
    words.map(lambda text: text.encode("utf-8", "replace")),
    st.just(b"<html><body><p>hi <a href='https://x.example'>x</a><script>bad()"),
)


def _params(params: list[tuple[str, str | None]]) -> str:
    return "".join(
        f"; {name}={value}" if value is not None else f"; {name}" for name, value in params
    )


leaf_headers = st.tuples(
    st.sampled_from(TYPES),
    st.lists(
        st.tuples(
            st.sampled_from(["charset", "charset*", "name", "format"]),
            st.one_of(st.sampled_from(CHARSETS), words, st.just("utf-8''%ff%fe"), st.none()),
        ),
        max_size=2,
    ),
    st.sampled_from([None, *TRANSFER]),
    st.sampled_from([None, "attachment", "inline", "bogus"]),
    st.one_of(st.none(), words, st.just("utf-8''%ff%fe.png")),
)


Head = tuple[str, list[tuple[str, str | None]], str | None, str | None, str | None]


def _leaf(head: Head, body: bytes) -> bytes:
    content_type, params, transfer, disposition, filename = head
    lines = [f"Content-Type: {content_type}{_params(params)}"]
    if transfer:
        lines.append(f"Content-Transfer-Encoding: {transfer}")
    if disposition:
        name = f"; filename*={filename}" if filename and "''" in filename else ""
        name = name or (f'; filename="{filename}"' if filename is not None else "")
        lines.append(f"Content-Disposition: {disposition}{name}")
    return _header_text("\r\n".join(lines)) + b"\r\n\r\n" + body


def _multipart(subtype: str, boundary: str, children: list[bytes], closed: bool) -> bytes:
    head = f'Content-Type: multipart/{subtype}; boundary="{boundary}"\r\n\r\n'.encode()
    out = head + b"preamble\r\n"
    for child in children:
        out += f"--{boundary}\r\n".encode() + child + b"\r\n"
    return out + (f"--{boundary}--\r\n".encode() if closed else b"")


entities = st.recursive(
    st.builds(_leaf, leaf_headers, body_bytes),
    lambda inner: st.builds(
        _multipart,
        st.sampled_from(["mixed", "alternative", "related", "report", "x-odd"]),
        st.sampled_from(["b1", "b1", "=_x", "a b"]),  # the same boundary nested, too
        st.lists(inner, max_size=3),
        st.booleans(),
    ),
    max_leaves=8,
)
top_headers = st.lists(
    st.tuples(
        st.sampled_from(
            ["From", "Subject", "Message-ID", "In-Reply-To", "References", "Date", "X-Odd", "To"]
        ),
        st.one_of(addresses, header_value),
    ),
    max_size=8,
)


def _mail(headers: list[tuple[str, str]], entity: bytes) -> bytes:
    head = b"".join(_header_text(f"{name}: {value}") + b"\r\n" for name, value in headers)
    return head + b"MIME-Version: 1.0\r\n" + entity


def check(raw: bytes, strip_quotes: bool = False) -> IncomingMail:
    """The properties every mail below is held to."""
    mail = read_mail(raw, strip_quotes=strip_quotes)
    assert_renderable(mail.text, subject=mail.subject, nick=mail.nick, remote_id=mail.message_id)
    if mail.sender is not None:
        assert normalise_address(mail.sender) == mail.sender
        format_contact(mail.sender)  # raises AddressError if no contact JID can name it
    for mid in (mail.message_id, *mail.in_reply_to, *mail.references):
        assert mid is None or MESSAGE_ID.match(mid), mid
    for attachment in mail.attachments:
        assert isinstance(attachment.data, bytes) and attachment.data
        assert attachment.filename is None or isinstance(attachment.filename, str)
        assert isinstance(attachment.content_type, str)
    return mail


@FAST
@given(headers=top_headers, entity=entities, strip_quotes=st.booleans())
def test_structured_mail_of_every_shape(
    headers: list[tuple[str, str]], entity: bytes, strip_quotes: bool
) -> None:
    check(_mail(headers, entity), strip_quotes)


@FAST
@given(raw=st.binary(max_size=2000), strip_quotes=st.booleans())
@example(
    raw=b'From: a@b.c\r\nContent-Type: text/plain; charset="utf-8\x00"\r\n\r\nhi',
    strip_quotes=False,
)
@example(
    raw=b"From: =?x-unknown?q?=FF?= <a@b.c>\r\nSubject: =?utf-8?b?AA?=\r\n\r\n\x00\x0b]]>",
    strip_quotes=True,
)
@example(
    raw=b"From: a@b.c\r\nContent-Disposition: attachment; filename*\r\n\r\nx", strip_quotes=False
)
@example(raw=b"From: a@b.c\r\nContent-Type: text/plain; charset*\r\n\r\nhi", strip_quotes=False)
def test_any_bytes(raw: bytes, strip_quotes: bool) -> None:
    check(raw, strip_quotes)


def test_a_parameter_the_mail_parser_chokes_on_still_gives_text_and_sender() -> None:
    """``name*`` with no value makes the stdlib's strict header parser raise IndexError."""
    for head in (
        b"Content-Type: text/plain; charset*",
        b"Content-Type: text/plain\r\nContent-Disposition: inline; filename*",
    ):
        raw = (
            b"From: =?utf-8?q?J=C3=BCliet?= <Juliet@Capulet.lit>\r\n"
            b"Subject: =?utf-8?b?w6l0w6k=?=\r\n" + head + b"\r\n\r\nhello"
        )
        mail = check(raw)
        assert (mail.sender, mail.nick, mail.subject, mail.text) == (
            "juliet@capulet.lit",
            "J\u00fcliet",
            "\u00e9t\u00e9",
            "hello",
        )
    multipart = _multipart(
        "mixed",
        "b1",
        [
            _leaf(("text/plain", [("charset", "latin-1")], "8bit", None, None), b"caf\xe9"),
            _leaf(("image/png", [("name*", None)], "base64", "attachment", "a.png"), b"iVBORw=="),
        ],
        True,
    )
    mail = check(b"From: juliet@capulet.lit\r\n" + multipart)
    assert mail.text == "café" and [a.filename for a in mail.attachments] == ["a.png"]


@settings(max_examples=40, deadline=None)
@given(
    headers=top_headers,
    entity=entities,
    edits=st.lists(st.tuples(st.integers(0, 5000), st.integers(0, 50), st.binary(max_size=8))),
)
def test_a_mail_cut_and_spliced(
    headers: list[tuple[str, str]], entity: bytes, edits: list[tuple[int, int, bytes]]
) -> None:
    raw = _mail(headers, entity)
    for start, length, junk in edits:
        start %= len(raw) + 1
        raw = raw[:start] + junk + raw[start + length :]
    check(raw)


def test_huge_header_counts_are_read() -> None:
    many = b"".join(b"X-H%d: v\r\n" % index for index in range(5000))
    assert check(b"From: a@b.c\r\n" + many + b"\r\nhello").text == "hello"


def _nested(depth: int, inner: bytes) -> bytes:
    for level in range(depth):
        inner = _multipart("mixed", f"b{level}", [inner], True)
    return inner


def test_a_mail_nested_as_deep_as_real_mail_is_read_whole() -> None:
    inner = _leaf(("text/plain", [], None, None, None), b"deep inside")
    mail = check(b"From: a@b.c\r\n" + _nested(MAX_MULTIPARTS, inner))
    assert mail.text == "deep inside"


def test_a_mail_nested_deeper_is_read_at_once_as_its_headers() -> None:
    """The stdlib parser's time grows with lines × nesting: this mail (270 KB, 400 deep) held
    the event loop for 7 s, a 10 MB one would for minutes."""
    inner = _leaf(("text/plain", [], None, None, None), b"x\r\n" * 80_000)
    raw = b"From: Juliet <juliet@capulet.lit>\r\nSubject: deep\r\n" + _nested(400, inner)
    start = time.monotonic()
    mail = check(raw)
    assert time.monotonic() - start < 1.0
    assert (mail.sender, mail.subject, mail.text) == ("juliet@capulet.lit", "deep", TOO_MANY_PARTS)


def test_a_mail_labelled_with_a_quadratic_codec_is_read_at_once() -> None:
    """Python decodes punycode in quadratic time: 150 KB of it took 13 s, 10 MB would take
    hours, all of it holding the event loop (every transport stops)."""
    digits = b"9" * 150_000
    raw = (
        b"From: a@b.c\r\nSubject: =?PunyCode?q?a-" + digits + b"?=\r\n"
        b'Content-Type: text/plain; charset="punycode"\r\n'
        b"Content-Disposition: inline; filename*=idna''a-" + digits + b"\r\n\r\na-" + digits
    )
    start = time.monotonic()
    mail = check(raw)
    assert time.monotonic() - start < 2.0
    assert mail.text == "a-" + digits.decode()


@FAST
@given(html=st.one_of(hostile_texts(200), st.text(alphabet="<>/a=\"'! &#;x-[]", max_size=200)))
@example(html="<a href='https://x'>a<a href='mailto:b'>")
@example(html="<![CDATA[<&#xdfff;&#0;&#x110000;")
def test_html_bodies(html: str) -> None:
    assert_renderable(html_to_text(html))


@FAST
@given(text=hostile_texts(300))
@example(text="answer\n\nOn Tue, Juliet wrote:\n> quoted\n>")
def test_quoted_tails(text: str) -> None:
    kept = strip_quoted_tail(text)
    assert_renderable(kept)
    assert kept.strip() == "" or kept.strip() in text.strip() or kept in text
