"""What a correction, retraction, reaction or reply becomes as IRC text, and back.

IRC has no way to change a line once said. Where the server carries IRCv3 client tags
(``message-tags``), replies and reactions name their target by its ``msgid``
(``+draft/reply``, ``+draft/react``, ``+draft/unreact``); elsewhere they become text that IRC
readers already know how to read:

- a reply: ``nick: text``, as IRC users address each other;
- a reaction: ``/me reacted 👍 to nick: "beginning…"`` (or nothing, as the user chooses);
- a correction: the corrected text with `` (edited)`` at its end, as bridges such as
  matterbridge write it (no IRC client uses a ``+draft/edit`` tag to build on);
- a retraction: ``/me retracted their last message`` (or ``a message``); never the text
  again, since what was retracted may be what should not have been sent (a password).

Back from IRC, ``s/old/new/`` right after one's own line is how IRC users correct it; it
becomes an XEP-0308 correction of that line. Pure functions: no I/O here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CORRECTION_MARK = " (edited)"
#: characters of the earlier message quoted in a reaction line
QUOTE_CHARS = 40

#: ``s/old/new/`` (closing slash optional, ``g`` for every occurrence); ``\/`` is a slash
_SUBSTITUTION = re.compile(r"^s/((?:[^/\\]|\\.)+)/((?:[^/\\]|\\.)*)(?:/(g?))?$")


def beginning(text: str, limit: int = QUOTE_CHARS) -> str:
    """The start of ``text`` on one line, cut at a word with ``…`` when longer."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[:limit]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut) + "…"


def reply_text(nick: str, body: str) -> str:
    """A reply where IRC cannot link it: addressed to the replied-to nick, as IRC users do."""
    if not nick or body.lower().startswith(nick.lower() + ":"):
        return body
    return f"{nick}: {body}"


def correction_text(body: str) -> str:
    """A corrected message: all of its text again, marked at its end."""
    return body.rstrip() + CORRECTION_MARK


def reaction_line(emojis: tuple[str, ...], nick: str, quote: str) -> str:
    """What ``/me`` says for reactions IRC cannot attach to a line (no message-tags)."""
    if quote:
        what = f'{nick}: "{beginning(quote)}"' if nick else f'"{beginning(quote)}"'
    else:
        what = f"a message of {nick}" if nick else "a message"
    return f"reacted {' '.join(emojis)} to {what}"


def retraction_line(last: bool) -> str:
    """What ``/me`` says for a retraction: which message, not its text."""
    return "retracted their last message" if last else "retracted a message"


def reaction_changes(
    before: tuple[str, ...], now: tuple[str, ...]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """XEP-0444 sends the whole set; IRC adds and removes one at a time: (added, removed)."""
    added = tuple(emoji for emoji in now if emoji not in before)
    removed = tuple(emoji for emoji in before if emoji not in now)
    return added, removed


@dataclass(frozen=True)
class Substitution:
    old: str
    new: str
    every: bool = False

    def applied(self, text: str) -> str | None:
        """``text`` corrected, or None when ``old`` is not in it (then it is no correction)."""
        if self.old not in text:
            return None
        return text.replace(self.old, self.new, -1 if self.every else 1)


def substitution(text: str) -> Substitution | None:
    """``s/old/new/`` (``s/old/new/g``) as IRC users write a fix of their previous line.

    Literal text, not a regular expression: that is how people mean it, and a pattern from
    the network must never cost the gateway more than a plain search.
    """
    found = _SUBSTITUTION.match(text.strip())
    if found is None:
        return None
    old, new = (part.replace("\\/", "/") for part in found.group(1, 2))
    return Substitution(old, new, bool(found.group(3)))
