"""Dropping the quoted tail of a reply (``On … wrote:`` and the ``>`` lines after it).

Mail replies carry the whole conversation below them; in a chat window the earlier messages
are already on screen. Only a trailing block is dropped: interleaved answers keep their quotes,
because there the quotes are what the answers refer to.
"""

from __future__ import annotations

import re

_ATTRIBUTION = re.compile(
    r"^(on\b.*\bwrote:|le\b.*\ba écrit\s?:|am\b.*\bschrieb\b.*:|.*<[^>]+@[^>]+>\s*wrote:)$",
    re.IGNORECASE,
)
_SEPARATORS = re.compile(
    r"^(-{2,}\s*(original message|forwarded message)\s*-{2,}|_{10,})$", re.IGNORECASE
)


def strip_quoted_tail(text: str) -> str:
    """Remove a trailing quoted block and its attribution line; keep the text otherwise."""
    lines = text.rstrip().split("\n")
    for index, line in enumerate(lines):
        if _SEPARATORS.match(line.strip()) and index > 0:
            return _kept(lines[:index], text)
    end = len(lines)
    while end > 0 and (lines[end - 1].startswith(">") or not lines[end - 1].strip()):
        end -= 1
    if end == len(lines):
        return text
    # An attribution may wrap over two lines ("On Tue, … Juliet\n<juliet@capulet.lit> wrote:").
    for back in (1, 2):
        if end - back >= 0 and _ATTRIBUTION.match(" ".join(lines[end - back : end]).strip()):
            end -= back
            break
    return _kept(lines[:end], text)


def _kept(lines: list[str], original: str) -> str:
    kept = "\n".join(lines).rstrip()
    return kept if kept.strip() else original.strip()
