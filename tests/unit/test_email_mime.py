"""Reading received mail: text/plain first, HTML made readable, charsets, broken MIME, DSNs."""

from __future__ import annotations

from email.message import EmailMessage

from transports.email.html_text import html_to_text
from transports.email.incoming_mail import read_mail
from transports.email.quoting import strip_quoted_tail


def _mail(**headers: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = headers.pop("From", '"Juliet Capulet" <Juliet@Capulet.lit>')
    message["To"] = "alice@mail.example.org"
    message["Subject"] = headers.pop("Subject", "Balcony")
    message["Message-ID"] = headers.pop("Message_ID", "<m1@capulet.lit>")
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    return message


def test_plain_text_mail() -> None:
    message = _mail()
    message.set_content("Wherefore art thou?\n")
    mail = read_mail(message.as_bytes())
    assert mail.sender == "juliet@capulet.lit"
    assert mail.has_from
    assert mail.nick == "Juliet Capulet"
    assert mail.subject == "Balcony"
    assert mail.text == "Wherefore art thou?"
    assert mail.message_id == "<m1@capulet.lit>"
    assert mail.attachments == ()
    assert mail.bounce is None


def test_text_plain_is_preferred_over_html() -> None:
    message = _mail()
    message.set_content("plain version")
    message.add_alternative("<p>html <b>version</b></p>", subtype="html")
    assert read_mail(message.as_bytes()).text == "plain version"


def test_html_only_mail_becomes_readable_text() -> None:
    message = _mail()
    message.set_content(
        "<html><head><style>p {color: red}</style><title>x</title></head><body>"
        "<p>Hello&nbsp;<b>Alice</b>,</p><p>see <a href='https://example.org/x'>this</a>"
        "<br>and<br/>that</p><ul><li>one</li><li>two</li></ul>"
        "<script>alert(1)</script></body></html>",
        subtype="html",
    )
    text = read_mail(message.as_bytes()).text
    assert text == "Hello Alice,\n\nsee this (https://example.org/x)\nand\nthat\n\n- one\n- two"


def test_legacy_charsets_are_decoded() -> None:
    raw = (
        b"From: =?iso-8859-1?q?J=FCrgen?= <jurgen@example.de>\r\n"
        b"To: alice@mail.example.org\r\n"
        b"Subject: =?iso-8859-1?q?Gr=FC=DFe?=\r\n"
        b"Message-ID: <l1@example.de>\r\n"
        b"MIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=iso-8859-1\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\n"
        b"Sch\xf6ne Gr\xfc\xdfe aus K\xf6ln\r\n"
    )
    mail = read_mail(raw)
    assert mail.text == "Schöne Grüße aus Köln"
    assert mail.subject == "Grüße"
    assert mail.nick == "Jürgen"


def test_unknown_charset_still_gives_text() -> None:
    raw = (
        b"From: x@example.org\r\nContent-Type: text/plain; charset=x-no-such-charset\r\n\r\n"
        b"readable \xff part\r\n"
    )
    mail = read_mail(raw)
    assert mail.text.startswith("readable")
    assert "part" in mail.text


def test_attachments_are_collected_apart_from_the_body() -> None:
    message = _mail()
    message.set_content("see attached")
    message.add_attachment(b"\x89PNG fake", maintype="image", subtype="png", filename="cat.png")
    message.add_attachment(b"a,b\n1,2\n", maintype="text", subtype="csv", filename="t.csv")
    mail = read_mail(message.as_bytes())
    assert mail.text == "see attached"
    assert [(a.filename, a.content_type, a.data) for a in mail.attachments] == [
        ("cat.png", "image/png", b"\x89PNG fake"),
        ("t.csv", "text/csv", b"a,b\n1,2\n"),
    ]


def test_malformed_mime_gives_what_could_be_read() -> None:
    raw = (
        b"From: Juliet <juliet@capulet.lit>\r\nSubject: broken\r\n"
        b'Content-Type: multipart/mixed; boundary="XYZ"\r\n\r\n'
        b"--XYZ\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"aGVsbG8gd29ybGQ=\r\n"
        b"--XYZ\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"!!!not base64!!!\r\n"
        # no closing boundary
    )
    mail = read_mail(raw)
    assert mail.sender == "juliet@capulet.lit"
    assert mail.text == "hello world"


def test_garbage_never_raises() -> None:
    for raw in (b"", b"\x00\xff\xfe", b"From:\r\n\r\n", b"From: <<<@>>>\r\n\r\nx", b"\r\n" * 5):
        mail = read_mail(raw)
        assert mail.sender is None


def test_missing_and_unusable_from_are_told_apart() -> None:
    assert read_mail(b"Subject: x\r\n\r\nbody").has_from is False
    broken = read_mail(b"From: not an address\r\n\r\nbody")
    assert broken.has_from and broken.sender is None


def test_threading_headers() -> None:
    raw = (
        b"From: j@capulet.lit\r\nMessage-ID: <p3@x>\r\nIn-Reply-To: <p2@x>\r\n"
        b"References: <root@x> <p1@x>\r\n <p2@x>\r\n\r\nre\r\n"
    )
    mail = read_mail(raw)
    assert mail.in_reply_to == ("<p2@x>",)
    assert mail.references == ("<root@x>", "<p1@x>", "<p2@x>")
    assert mail.thread_ids() == ("<p2@x>", "<p1@x>", "<root@x>")
    assert mail.thread_root() == "<root@x>"


def test_quoted_tails_are_stripped_only_when_asked() -> None:
    body = (
        "Yes, at nine.\n\nOn Tue, 1 Apr 2025 at 10:00, Alice <alice@mail.example.org> wrote:\n"
        "> When?\n> Tell me\n"
    )
    message = _mail()
    message.set_content(body)
    assert read_mail(message.as_bytes()).text == body.strip()
    assert read_mail(message.as_bytes(), strip_quotes=True).text == "Yes, at nine."


def test_quote_stripping_keeps_interleaved_answers() -> None:
    text = "> When?\nAt nine.\n> Where?\nThe balcony."
    assert strip_quoted_tail(text) == text
    assert strip_quoted_tail("ok\n\n-----Original Message-----\nFrom: x") == "ok"
    assert strip_quoted_tail("> only a quote") == "> only a quote"
    assert strip_quoted_tail("Sure.\nOn Mon, Bob wrote:\n> x") == "Sure."


def test_html_to_text_handles_broken_markup() -> None:
    assert html_to_text("<p>unclosed <b>bold <i>x") == "unclosed bold x"
    assert html_to_text("<a href='mailto:a@b.c'>a@b.c</a>") == "a@b.c"
    assert html_to_text("<pre>a  b\n  c</pre>") == "a  b\n  c"
    table = "<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>"
    assert html_to_text(table) == "a b\nc"


def dsn(original_id: str, action: str = "failed", status: str = "5.1.1") -> bytes:
    return (
        b"From: MAILER-DAEMON@relay.example\r\nTo: alice@mail.example.org\r\n"
        b"Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn1@relay.example>\r\n"
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        b"--B\r\nContent-Type: text/plain\r\n\r\nThis is the mail system. Sorry.\r\n"
        b"--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        b"Reporting-MTA: dns; relay.example\r\n\r\n"
        b"Final-Recipient: rfc822; nobody@capulet.lit\r\n"
        + f"Action: {action}\r\nStatus: {status}\r\n".encode()
        + b"Diagnostic-Code: smtp; 550 5.1.1 <nobody@capulet.lit>: Recipient address\r\n"
        b" rejected: User unknown\r\n\r\n"
        b"--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        + f"From: alice@mail.example.org\r\nMessage-ID: {original_id}\r\n".encode()
        + b"\r\n--B--\r\n"
    )


def test_a_dsn_is_read_into_a_reason_in_words() -> None:
    mail = read_mail(dsn("<orig@mail.example.org>"))
    bounce = mail.bounce
    assert bounce is not None and bounce.failed
    assert bounce.original_message_id == "<orig@mail.example.org>"
    assert bounce.recipient == "nobody@capulet.lit"
    assert bounce.reason() == (
        "The email to nobody@capulet.lit could not be delivered: the mailbox does not exist "
        "(the server said: 550 5.1.1 <nobody@capulet.lit>: Recipient address rejected: "
        "User unknown)"
    )


def test_a_dsn_with_the_whole_original_message() -> None:
    original = _mail(Message_ID="<whole@mail.example.org>")
    original.set_content("hi")
    raw = (
        b"From: postmaster@relay.example\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=B\r\n\r\n"
        b"--B\r\nContent-Type: text/plain\r\n\r\nfailed\r\n"
        b"--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        b"Reporting-MTA: dns; relay.example\r\n\r\n"
        b"Final-Recipient: rfc822;juliet@capulet.lit\r\nAction: failed\r\nStatus: 5.2.2\r\n\r\n"
        b"--B\r\nContent-Type: message/rfc822\r\n\r\n" + original.as_bytes() + b"\r\n--B--\r\n"
    )
    mail = read_mail(raw)
    assert mail.bounce is not None
    assert mail.bounce.original_message_id == "<whole@mail.example.org>"
    assert mail.bounce.status == "5.2.2"
    assert mail.bounce.reason() == (
        "The email to juliet@capulet.lit could not be delivered: the mailbox is full"
    )
    # the original's attachments or text are not the bounce's
    assert mail.attachments == ()


def test_delayed_reports_are_not_failures() -> None:
    bounce = read_mail(dsn("<o@x.example>", action="delayed", status="4.4.1")).bounce
    assert bounce is not None and not bounce.failed


def test_multipart_report_of_another_kind_is_no_bounce() -> None:
    raw = dsn("<o@x.example>").replace(b"delivery-status;", b"disposition-notification;")
    assert read_mail(raw).bounce is None
