"""The words a reply, a correction or a retraction becomes in mail, as mail clients write them.

- A reply: the user's text, then a blank line, then ``On <date>, <address> wrote:`` and the
  replied-to text behind ``> `` (below the answer, as Gmail, Outlook and Apple Mail put it by
  default; the inbound side's ``strip_quoted_replies`` drops exactly such a tail).
- A correction: a new mail in the thread whose Subject starts ``Correction: `` and whose first
  line is :data:`CORRECTION_LINE`; the corrected text follows, and the old text is quoted
  below it as in a reply, so the reader sees what changed.
- A retraction: mail cannot be recalled; the user is told so in :func:`cannot_recall`.

Pure functions, no I/O.
"""

from __future__ import annotations

from datetime import UTC, datetime

CORRECTION_PREFIX = "Correction: "
CORRECTION_LINE = "Correction: this mail replaces my previous one (quoted below)."


def attribution(when: float, who: str) -> str:
    """``On Tue, 1 Dec 2026 at 07:30 UTC, juliet@capulet.lit wrote:``."""
    moment = datetime.fromtimestamp(when, UTC)
    date = f"{moment:%a}, {moment.day} {moment:%b %Y} at {moment:%H:%M} UTC"
    return f"On {date}, {who} wrote:"


def quoted(text: str) -> str:
    """Each line behind ``> `` (``>`` alone for an empty line), as mail clients quote."""
    return "\n".join(f"> {line}" if line.strip() else ">" for line in text.strip().splitlines())


def with_quote(text: str, quote: str, heading: str) -> str:
    """``text``, then ``heading`` and ``quote`` quoted below it; ``text`` alone without one."""
    if not quote.strip():
        return text
    lines = [heading, quoted(quote)] if heading else [quoted(quote)]
    return f"{text}\n\n" + "\n".join(lines)


def correction_subject(subject: str) -> str:
    """``Correction: <subject>``, once however often a mail is corrected."""
    return subject if subject.startswith(CORRECTION_PREFIX) else CORRECTION_PREFIX + subject


def correction_text(text: str, old: str, heading: str) -> str:
    return with_quote(f"{CORRECTION_LINE}\n\n{text}", old, heading)


def without_correction_line(text: str) -> str:
    """A correction mail's text as the corrected message: the marking line dropped."""
    first, _, rest = text.partition("\n")
    return rest.strip() if first.strip() == CORRECTION_LINE else text


def cannot_recall(contact: str) -> str:
    return (
        f"Your email to {contact} cannot be recalled: once mail is sent there is no way to "
        "take it back, so it stays in their mailbox. Nothing was sent."
    )
