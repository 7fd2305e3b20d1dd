"""Reactions as phones write them in a text, read and written. Pure functions.

A phone that reacts to a message sent by SMS (no iMessage, no RCS between the two) sends a
text that names the reaction and quotes the message:

- iPhone (English): ``Liked “…”``, ``Loved “…”``, ``Laughed at “…”``, ``Emphasized “…”``,
  ``Questioned “…”``, ``Disliked “…”``, and ``Removed a like from “…”`` (a heart, a laugh,
  an exclamation, a question mark, a dislike);
- Android (Google Messages), and iPhones since iOS 18 for any emoji: ``Reacted 👍 to “…”``
  and ``Removed 👍 from “…”``.

Quotes are curly or straight, and a long message is quoted cut, ending with an ellipsis. The
gateway reads these into XEP-0444 reactions on the message they quote, and writes the user's
reactions in Android's form: readable on any phone, and read back by phones and gateways that
know it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

#: iPhone's verbs, and the emoji its tapbacks show.
VERBS = {
    "Liked": "👍",
    "Loved": "❤️",
    "Laughed at": "😂",
    "Emphasized": "‼️",
    "Questioned": "❓",
    "Disliked": "👎",
}
#: What iPhone says it removed, for each of its tapbacks.
REMOVED = {
    "a like": "👍",
    "a heart": "❤️",
    "a laugh": "😂",
    "an exclamation": "‼️",
    "a question mark": "❓",
    "a dislike": "👎",
}
#: No emoji, even with skin tone, joiners and selectors, is longer; words are.
MAX_EMOJI_CHARS = 16
#: How much of a message a reaction quotes: about what fits on one line of a phone.
QUOTE_CHARS = 50

_OPEN, _CLOSE = '[“"]', '[”"]'
_TAPBACK = re.compile(
    rf"(?:(?P<verb>{'|'.join(VERBS)})"
    rf"|Reacted (?P<emoji>\S+) to"
    rf"|Removed (?:(?P<removed>{'|'.join(REMOVED)})|(?P<removed_emoji>\S+)) from)"
    rf" {_OPEN}(?P<quote>.+){_CLOSE}",
    re.DOTALL,
)
_CUTS = ("…", "...")
#: Variation selectors: ❤ and ❤️ are one reaction, written two ways.
_SELECTORS = dict.fromkeys(map(ord, "\ufe0e\ufe0f"))
#: Quotes and apostrophes phones, carriers or Twilio's Smart Encoding may straighten.
_STRAIGHT = str.maketrans({"“": '"', "”": '"', "„": '"', "‘": "'", "’": "'"})


@dataclass(frozen=True)
class Tapback:
    """A reaction a phone sent as text: ``emoji`` added or removed on the quoted message."""

    emoji: str
    added: bool
    quote: str


def parse_tapback(text: str) -> Tapback | None:
    """The reaction ``text`` is, or None if it is a message like any other."""
    found = _TAPBACK.fullmatch(text.strip())
    if found is None:
        return None
    quote = found["quote"]
    if found["verb"]:
        return Tapback(VERBS[found["verb"]], True, quote)
    if found["removed"]:
        return Tapback(REMOVED[found["removed"]], False, quote)
    emoji = found["emoji"] or found["removed_emoji"]
    if not _is_emoji(emoji):
        return None
    return Tapback(emoji, bool(found["emoji"]), quote)


def _is_emoji(token: str) -> bool:
    """Short and without letters: an emoji (a keycap has a digit), not a word."""
    return len(token) <= MAX_EMOJI_CHARS and not any(char.isalpha() for char in token)


def quote_matches(quote: str, body: str, *, stored_whole: bool = True) -> bool:
    """Whether a tapback's ``quote`` names the message whose text is ``body``.

    Spacing, quote marks and Unicode forms are compared loosely, as carriers and phones change
    them. A quote ending with an ellipsis matches a message that begins with what precedes
    it; any other quote must be the whole text. The store keeps only a message's beginning:
    with ``stored_whole=False``, ``body`` is that beginning, and a quote that starts with it
    matches.
    """
    wanted, have = _comparable(quote), _comparable(body)
    if not wanted or not have:
        return False
    if wanted == have or (not stored_whole and wanted.startswith(have)):
        return True
    for cut in _CUTS:
        stem = wanted.removesuffix(cut).rstrip()
        if stem != wanted and stem and have.startswith(stem):
            return True
    return False


def _comparable(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).translate(_STRAIGHT).split())


def same_emoji(one: str, other: str) -> bool:
    """Whether two reactions are one emoji, written with or without a variation selector."""
    return one.translate(_SELECTORS) == other.translate(_SELECTORS)


def with_reaction(current: Sequence[str], emoji: str) -> tuple[str, ...]:
    """A reactor's set once ``emoji`` is added (kept as it was if already there)."""
    if any(same_emoji(emoji, have) for have in current):
        return tuple(current)
    return (*current, emoji)


def without_reaction(current: Sequence[str], emoji: str) -> tuple[str, ...]:
    """A reactor's set once ``emoji`` (however it was written) is removed."""
    return tuple(have for have in current if not same_emoji(emoji, have))


def beginning(text: str, limit: int = QUOTE_CHARS, ellipsis: str = "…") -> str:
    """The start of ``text`` on one line, cut at a word and marked cut if it is longer."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip() + ellipsis


def reaction_text(added: Sequence[str], removed: Sequence[str], quoted: str) -> str | None:
    """The text that tells a phone user of the user's reaction, in Android's words.

    A client that swaps one reaction for another removes one and adds one: only the added one
    is said, since the reader wants to know what the reaction is now. An empty ``quoted`` is a
    message that was only an attachment. None: nothing changed, nothing to say.
    """
    what = f"“{beginning(quoted)}”" if quoted.strip() else "an attachment"
    if added:
        return f"Reacted {''.join(added)} to {what}"
    if removed:
        return f"Removed {''.join(removed)} from {what}"
    return None
