"""Phone reactions as text, read as phones send them and written as phones show them.

The texts are the ones an iPhone (Messages, English) and an Android phone (Google Messages)
send to a number that is not on iMessage/RCS: a tapback is a text naming the reaction and
quoting the message, in curly quotes (iPhone) or straight ones, cut with an ellipsis when long.
"""

from __future__ import annotations

import pytest

from transports.base import OutboundMessage
from transports.events import Refers
from transports.sms.message_refs import recorded_as
from transports.sms.tapbacks import (
    Tapback,
    beginning,
    parse_tapback,
    quote_matches,
    reaction_text,
    same_emoji,
    with_reaction,
    without_reaction,
)

ALICE = "alice@example.org"
THUMBS, HEART, LAUGH, BANG, QUESTION, THUMBS_DOWN = "👍", "❤️", "😂", "‼️", "❓", "👎"


@pytest.mark.parametrize(
    ("text", "emoji", "added"),
    [
        ("Liked “See you at 8”", THUMBS, True),
        ("Loved “See you at 8”", HEART, True),
        ("Laughed at “See you at 8”", LAUGH, True),
        ("Emphasized “See you at 8”", BANG, True),
        ("Questioned “See you at 8”", QUESTION, True),
        ("Disliked “See you at 8”", THUMBS_DOWN, True),
        ("Removed a like from “See you at 8”", THUMBS, False),
        ("Removed a heart from “See you at 8”", HEART, False),
        ("Removed a laugh from “See you at 8”", LAUGH, False),
        ("Removed an exclamation from “See you at 8”", BANG, False),
        ("Removed a question mark from “See you at 8”", QUESTION, False),
        ("Removed a dislike from “See you at 8”", THUMBS_DOWN, False),
    ],
)
def test_iphone_tapbacks_add_and_remove_their_emoji(text: str, emoji: str, added: bool) -> None:
    assert parse_tapback(text) == Tapback(emoji, added, quote="See you at 8")


def test_android_reactions_carry_the_emoji_they_name() -> None:
    assert parse_tapback("Reacted 😮 to “See you at 8”") == Tapback("😮", True, "See you at 8")
    assert parse_tapback("Removed 😮 from “See you at 8”") == Tapback("😮", False, "See you at 8")
    # emoji made of several code points, as sent: skin tone, variation selector, keycap
    assert parse_tapback("Reacted 👍🏽 to “ok”") == Tapback("👍🏽", True, "ok")
    assert parse_tapback("Reacted ❤️ to “ok”") == Tapback("❤️", True, "ok")
    assert parse_tapback("Reacted 1️⃣ to “ok”") == Tapback("1️⃣", True, "ok")


def test_straight_quotes_an_ellipsis_and_inner_quotes_are_read() -> None:
    assert parse_tapback('Liked "See you at 8"') == Tapback(THUMBS, True, "See you at 8")
    assert parse_tapback('Reacted 👍 to "ok"') == Tapback(THUMBS, True, "ok")
    assert parse_tapback("Loved “Shall we meet at the station or at the caf…”") == Tapback(
        HEART, True, "Shall we meet at the station or at the caf…"
    )
    # the quote runs to the last closing quote: the message itself may hold quotes
    assert parse_tapback("Liked “He said “no” twice”") == Tapback(
        THUMBS, True, "He said “no” twice"
    )
    # a quoted message may span lines; the text around it may end with a new line
    assert parse_tapback("Liked “line one\nline two”\n") == Tapback(
        THUMBS, True, "line one\nline two"
    )


@pytest.mark.parametrize(
    "text",
    [
        "Liked it a lot",  # no quote: words, not a tapback
        "Liked “”",  # nothing quoted
        "liked “See you at 8”",  # phones write the verb capitalised
        "I liked “See you at 8”",
        "Liked “See you at 8” very much",
        "Liked “See you at 8",  # no closing quote
        "Reacted great to “See you at 8”",  # a word is no emoji
        "Reacted 👍 👍 to “See you at 8”",
        "Reacted to “See you at 8”",
        "Removed a hat from “See you at 8”",
        "Liked an image",  # a tapback on a picture quotes nothing the gateway can match
        "",
    ],
)
def test_texts_that_are_not_tapbacks_stay_text(text: str) -> None:
    assert parse_tapback(text) is None


def test_a_quote_matches_the_message_it_quotes() -> None:
    assert quote_matches("See you at 8", "See you at 8")
    # phones and carriers change spacing and quotes; Twilio may straighten curly quotes
    assert quote_matches("See  you\nat 8 ", "See you at 8")
    assert quote_matches('He said "no"', "He said “no”")
    assert quote_matches("it’s fine", "it's fine")
    # a long message is quoted cut, with an ellipsis (one character, or three dots)
    assert quote_matches(
        "Shall we meet at the station or at the caf…",
        "Shall we meet at the station or at the café?",
    )
    assert quote_matches("Shall we meet at the…", "Shall we meet at the station")
    assert quote_matches("Shall we meet at the...", "Shall we meet at the station")


def test_a_quote_does_not_match_another_message() -> None:
    assert not quote_matches("See you at 8", "See you at 9")
    assert not quote_matches("See you", "See you at 8")  # not cut: the whole text is quoted
    assert not quote_matches("See you at 8 then", "See you at 8")
    assert not quote_matches("Shall we meet at the bus…", "Shall we meet at the station")
    assert not quote_matches("…", "anything")
    assert not quote_matches("", "")
    assert not quote_matches("See you at 8", "")


def test_a_stored_beginning_matches_a_longer_quote() -> None:
    """The store keeps a message's first characters: a whole quote may run past them."""
    stored = "a" * 30
    assert quote_matches("a" * 40, stored, stored_whole=False)
    assert not quote_matches("a" * 40, stored)
    assert not quote_matches("b" * 40, stored, stored_whole=False)


def test_emoji_with_and_without_variation_selector_are_the_same() -> None:
    assert same_emoji("❤️", "❤")
    assert same_emoji("‼️", "‼︎")
    assert not same_emoji("👍", "👎")
    assert not same_emoji("👍🏽", "👍")


def test_a_contacts_set_changes_one_reaction_at_a_time() -> None:
    assert with_reaction((), THUMBS) == (THUMBS,)
    assert with_reaction((THUMBS,), HEART) == (THUMBS, HEART)
    assert with_reaction(("❤",), HEART) == ("❤",)  # already there, as another spelling
    assert without_reaction((THUMBS, "❤"), HEART) == (THUMBS,)
    assert without_reaction((THUMBS,), LAUGH) == (THUMBS,)


def test_the_beginning_of_a_message_is_quoted_whole_or_cut_at_a_word() -> None:
    assert beginning("See you at 8") == "See you at 8"
    assert beginning("See you\n  at 8 ") == "See you at 8"
    long = "Shall we meet at the station or at the café near the river, whichever is closer?"
    assert beginning(long) == "Shall we meet at the station or at the café near…"
    assert beginning(long, ellipsis="...") == "Shall we meet at the station or at the café near..."
    assert beginning("x" * 100) == "x" * 49 + "…"  # no space to cut at: cut in the word


def test_reactions_are_written_as_android_writes_them() -> None:
    assert reaction_text((THUMBS,), (), "See you at 8") == "Reacted 👍 to “See you at 8”"
    assert reaction_text((), (THUMBS,), "See you at 8") == "Removed 👍 from “See you at 8”"
    # a client that swaps one reaction for another: the new one is what the reader needs
    assert reaction_text((HEART,), (THUMBS,), "ok") == "Reacted ❤️ to “ok”"
    assert reaction_text((THUMBS, HEART), (), "ok") == "Reacted 👍❤️ to “ok”"
    assert reaction_text((THUMBS,), (), "") == "Reacted 👍 to an attachment"
    assert reaction_text((), (), "ok") is None


def test_what_the_gateway_writes_reads_back_as_the_same_reaction() -> None:
    """Another Portway user (or a phone that knows Android's form) sees a reaction."""
    message = "Shall we meet at the station or at the café near the river, whichever is closer?"
    text = reaction_text((THUMBS,), (), message)
    assert text is not None
    parsed = parse_tapback(text)
    assert parsed is not None and parsed.emoji == THUMBS and parsed.added
    assert quote_matches(parsed.quote, message)


def test_a_sent_text_is_remembered_as_the_message_the_user_sees() -> None:
    """Corrections under the corrected message's id; reactions with no text to match."""

    def sent(refers: Refers | None) -> OutboundMessage:
        return OutboundMessage(
            ALICE, f"{ALICE}/phone", "+15557654321", "x", "own-id", refers=refers
        )

    assert recorded_as(sent(None), "See you at 8") == ("own-id", "See you at 8")
    assert recorded_as(sent(Refers("reply", "first")), 'Re: "a"\nb') == ("own-id", 'Re: "a"\nb')
    fixed = sent(Refers("correction", "first"))
    assert recorded_as(fixed, "Correction: See you at 8") == ("first", "Correction: See you at 8")
    assert recorded_as(sent(Refers("reaction", "first", ("👍",))), "Reacted 👍 to “a”") == (
        "own-id",
        "",
    )
