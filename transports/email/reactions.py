"""Emoji reactions as mail: RFC 9078 reaction parts, written and read.

RFC 9078 marks a ``text/plain`` part ``Content-Disposition: reaction``; its content is one
line of emoji, and the mail's ``In-Reply-To`` names the message reacted to. The gateway sends
each change of the user's reactions as one such mail carrying the user's *whole* set (XEP-0444
semantics, and what Delta Chat sends), inside ``multipart/mixed`` after a readable fallback
part, so a mail client that knows no reactions still shows a sentence. An empty reaction part
(Delta Chat's way to take reactions back) means the set is now empty.

Reading is strict: a reaction part that is not a single line of emoji, or a mail without an
``In-Reply-To``, is no reaction, and the mail is shown as the ordinary mail it then is. Pure
functions, no I/O.
"""

from __future__ import annotations

import unicodedata
from email.message import Message, MIMEPart

DISPOSITION = "reaction"
#: XEP-0444 carries single emoji; a mail may hold anything, so a set is cut to a handful and
#: each emoji to what the longest real sequences (families, flags with tags) need.
MAX_EMOJIS = 20
MAX_EMOJI_CHARS = 16
#: a reaction part longer than this is no line of emoji but something else
MAX_PART_CHARS = 400

_ZWJ = "\u200d"
_VARIATION = ("\ufe0e", "\ufe0f")
_KEYCAP = "\u20e3"
#: Code points that do not start an emoji but modify the one before (skin tones, keycap,
#: variation selectors, tag characters of subdivision flags).
_MODIFIERS = range(0x1F3FB, 0x1F400)
_TAGS = range(0xE0020, 0xE0080)
_REGIONAL = range(0x1F1E6, 0x1F200)
#: Blocks that hold emoji (Unicode's emoji data draws from these, and nothing a sentence is
#: written in); plus the few single symbols that are emoji with a variation selector.
_EMOJI_BLOCKS = (
    range(0x1F000, 0x1FB00),
    range(0x2600, 0x27C0),
    range(0x2300, 0x2400),
    range(0x2B00, 0x2C00),
    range(0x2190, 0x2200),
    range(0x25A0, 0x2600),
)
_EMOJI_SINGLES = frozenset("\u00a9\u00ae\u203c\u2049\u2122\u2139\u24c2\u3030\u303d\u3297\u3299")
_KEYCAP_BASES = frozenset("0123456789#*")


def split_emojis(text: str) -> tuple[str, ...] | None:
    """The emoji in ``text`` (one line, separated by spaces or not); None if it holds
    anything else (a word, a second line, markup)."""
    line = text.strip()
    if "\n" in line or "\r" in line or len(line) > MAX_PART_CHARS:
        return None
    found: list[str] = []
    for word in line.split():
        emojis = _emojis_of(word)
        if emojis is None:
            return None
        found.extend(emojis)
    return tuple(dict.fromkeys(found))[:MAX_EMOJIS]


def _emojis_of(word: str) -> list[str] | None:
    """``word`` cut into emoji (ZWJ sequences, flags, keycaps and modifiers kept whole)."""
    emojis: list[str] = []
    index = 0
    while index < len(word):
        start = index
        char = word[index]
        if char in _KEYCAP_BASES:
            rest = word[index + 1 : index + 3]
            if rest not in (_KEYCAP, "\ufe0f" + _KEYCAP):
                return None
            index += 1 + len(rest)
        elif ord(char) in _REGIONAL:
            if index + 1 >= len(word) or ord(word[index + 1]) not in _REGIONAL:
                return None
            index += 2
        elif _is_emoji_base(char):
            index += 1
        else:
            return None
        while index < len(word):  # modifiers, and what a zero-width joiner adds
            following = word[index]
            if _modifies(following):
                index += 1
            elif following == _ZWJ and index + 1 < len(word) and _is_emoji_base(word[index + 1]):
                index += 2
            else:
                break
        emoji = word[start:index]
        if len(emoji) > MAX_EMOJI_CHARS:
            return None
        emojis.append(emoji)
    return emojis


def _modifies(char: str) -> bool:
    code = ord(char)
    return char in _VARIATION or char == _KEYCAP or code in _MODIFIERS or code in _TAGS


def _is_emoji_base(char: str) -> bool:
    code = ord(char)
    if char in _EMOJI_SINGLES:
        return True
    if not any(code in block for block in _EMOJI_BLOCKS):
        return False
    # Symbols only: the blocks also hold a few letters and marks (enclosed alphanumerics).
    return unicodedata.category(char) in ("So", "Sm", "Cn")


def reaction_part(emojis: tuple[str, ...]) -> MIMEPart:
    """The RFC 9078 part: ``text/plain`` in UTF-8, the emoji on one line, disposition
    ``reaction``."""
    part = MIMEPart()
    text = " ".join(emojis) + "\n"
    cte = "7bit" if text.isascii() else "base64"
    part.set_content(text, charset="utf-8", cte=cte, disposition=DISPOSITION)
    return part


def fallback_text(name: str, emojis: tuple[str, ...], quote: str) -> str:
    """What a reader whose mail client knows no reactions sees instead."""
    about = f":\n\n{quote}" if quote.strip() else "."
    if not emojis:
        return f"{name} took back their reaction to your message{about}\n"
    return f"{name} reacted {' '.join(emojis)} to your message{about}\n"


def read_reaction(message: Message) -> tuple[str, ...] | None:
    """The emoji of the mail's RFC 9078 reaction part; None when it has none, or a
    malformed one (then it is an ordinary mail). ``()``: every reaction taken back."""
    try:
        if not _in_reply_to(message):
            return None
        for part in message.walk():
            if part.is_multipart() or part.get_content_disposition() != DISPOSITION:
                continue
            if part.get_content_type() != "text/plain":
                return None
            return split_emojis(_text(part))
    except Exception:  # broken MIME: whatever it is, it is no reaction
        return None
    return None


def _in_reply_to(message: Message) -> bool:
    value = message.get("In-Reply-To")
    return value is not None and "<" in str(value) and ">" in str(value)


def _text(part: Message) -> str:
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        return "\n"  # unreadable: never a line of emoji
    if not isinstance(payload, bytes):
        return "\n"
    try:
        return payload.decode(part.get_content_charset() or "utf-8")
    except (LookupError, UnicodeDecodeError, ValueError):
        return "\n"
