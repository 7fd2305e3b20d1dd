"""Red-team checks of mail parsing: a mail's cost must not grow with what its sender chooses."""

from __future__ import annotations

import time

from transports.email.incoming_mail import MAX_PARTS, MAX_SUBJECT, TOO_MANY_PARTS, read_mail
from transports.email.outgoing_mail import MAX_REFERENCES

JULIET = "juliet@capulet.lit"


def flat_multipart(count: int) -> bytes:
    """One multipart/mixed with ``count`` one-byte attachments: a single boundary."""
    head = (
        f"From: Juliet <{JULIET}>\r\nSubject: parts\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nMany parts.\r\n"
    )
    part = "--b\r\nContent-Type: application/octet-stream\r\n\r\nx\r\n"
    return (head + part * count + "--b--\r\n").encode()


def test_a_flat_mail_of_20000_parts_is_read_at_once_as_its_headers() -> None:
    """One boundary and 20,000 one-byte parts (620 KB) took the stdlib parser 13 s of CPU
    (a 10 MB mail: minutes), holding the GIL the event loop needs."""
    start = time.monotonic()
    mail = read_mail(flat_multipart(20_000))
    assert time.monotonic() - start < 1.0
    assert (mail.sender, mail.subject, mail.text) == (JULIET, "parts", TOO_MANY_PARTS)
    assert mail.attachments == ()


def test_a_mail_with_as_many_parts_as_allowed_is_read_whole() -> None:
    attached = MAX_PARTS - 3  # delimiter lines: the body's, one per attachment, the closing
    mail = read_mail(flat_multipart(attached))
    assert mail.text == "Many parts."
    assert len(mail.attachments) == attached
    assert read_mail(flat_multipart(attached + 1)).text == TOO_MANY_PARTS


def test_dashes_in_a_text_do_not_count_as_parts_until_there_are_many() -> None:
    """A delimiter is a line that starts with ``--``; a text with a few such lines (a
    signature, a rule) is read whole."""
    raw = f"From: {JULIET}\r\nSubject: s\r\n\r\nhello\r\n-- \r\nJuliet\r\n---\r\n".encode()
    assert read_mail(raw).text.startswith("hello")


def test_the_ids_a_mail_names_are_bounded_before_they_are_kept() -> None:
    """A mail's Message-ID and References are kept for good (threading, replies): a stranger
    could have 9 MB of ids stored per mail. An id longer than a mail line is not an id, and
    References keep the root and the nearest ancestors, as the gateway's own replies do."""
    huge_id = "<" + "a" * 100_000 + "@x>"
    chain = " ".join(f"<m{index}@capulet.lit>" for index in range(10_000))
    raw = (
        f"From: {JULIET}\r\nSubject: s\r\nMessage-ID: {huge_id}\r\n"
        f"In-Reply-To: {huge_id}\r\nReferences: {chain}\r\n\r\nhello\r\n"
    ).encode()
    mail = read_mail(raw)
    assert mail.message_id is None
    assert mail.in_reply_to == ()
    assert len(mail.references) == MAX_REFERENCES
    assert mail.references[0] == "<m0@capulet.lit>"
    assert mail.references[-1] == "<m9999@capulet.lit>"
    assert mail.thread_root() == "<m0@capulet.lit>"


def test_the_subject_kept_for_replies_is_bounded() -> None:
    """The subject is kept for good with the mail's ids (a reply's "Re:"): 5 MB of it was."""
    raw = f"From: {JULIET}\r\nSubject: {'s' * 5_000_000}\r\n\r\nhello\r\n".encode()
    subject = read_mail(raw).subject
    assert subject is not None and 0 < len(subject) <= MAX_SUBJECT
