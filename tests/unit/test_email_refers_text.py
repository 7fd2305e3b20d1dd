"""What replies and corrections look like in mail, and which shared links become files."""

from __future__ import annotations

from transports.email.attachments import final_text, split_links
from transports.email.quoting import strip_quoted_tail
from transports.email.refers_text import (
    CORRECTION_LINE,
    attribution,
    correction_subject,
    correction_text,
    with_quote,
    without_correction_line,
)
from transports.shared_files import SharedFile

WHEN = 1_700_000_000.0  # Tue, 14 Nov 2023 22:13 UTC


def test_a_reply_quotes_below_as_mail_clients_do() -> None:
    heading = attribution(WHEN, "juliet@capulet.lit")
    assert heading == "On Tue, 14 Nov 2023 at 22:13 UTC, juliet@capulet.lit wrote:"
    text = with_quote("Yes, at nine.", "Wherefore art thou?\n\nCome at nine?", heading)
    assert text == (
        "Yes, at nine.\n\n"
        "On Tue, 14 Nov 2023 at 22:13 UTC, juliet@capulet.lit wrote:\n"
        "> Wherefore art thou?\n>\n> Come at nine?"
    )
    # what the inbound side drops when asked is exactly that tail
    assert strip_quoted_tail(text) == "Yes, at nine."


def test_a_reply_without_a_quote_is_the_text_alone() -> None:
    assert with_quote("Yes.", "  ", "On …, x wrote:") == "Yes."
    assert with_quote("Yes.", "earlier", "") == "Yes.\n\n> earlier"


def test_a_correction_is_marked_in_subject_and_first_line() -> None:
    assert correction_subject("Re: Balcony") == "Correction: Re: Balcony"
    assert correction_subject("Correction: Re: Balcony") == "Correction: Re: Balcony"
    text = correction_text("at ten", "at nine", attribution(WHEN, "alice@mail.example.org"))
    assert text.split("\n")[0] == CORRECTION_LINE
    assert text == (
        f"{CORRECTION_LINE}\n\nat ten\n\n"
        "On Tue, 14 Nov 2023 at 22:13 UTC, alice@mail.example.org wrote:\n> at nine"
    )
    # read back (another Portway's correction): the marking line goes, the text stays
    assert without_correction_line(text).startswith("at ten")
    assert without_correction_line("at ten") == "at ten"


def test_a_link_to_attach_leaves_the_text_and_others_stay() -> None:
    upload = "https://upload.example.org/f/abc/rose.png"
    other = "https://evil.example.net/x.png"
    text, files = split_links(upload, (upload,), lambda url: url == upload)
    assert (text, files) == ("", (upload,))
    text, files = split_links(f"look\n{upload}", (upload, other), lambda url: url == upload)
    assert (text, files) == (f"look\n{other}", (upload,))
    text, files = split_links(other, (other,), lambda url: False)
    assert (text, files) == (other, ())


def test_the_final_text_names_the_files_or_keeps_the_links() -> None:
    rose = SharedFile("u", "rose.png", "image/png", b"x")
    assert final_text("", [rose], []) == "Attached: rose.png"
    assert final_text("look", [rose], []) == "look"
    assert final_text("", [], ["https://upload.example.org/big.iso"]) == (
        "https://upload.example.org/big.iso"
    )
