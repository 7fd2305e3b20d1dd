"""Which links of a user's message go along as attached files, and the text that is left.

Clients that share a file (XEP-0363 upload, then XEP-0066 OOB) send its URL as the whole body
as well. When the file itself is attached, the URL is taken out of the text: the reader gets
the file, not a link to it. Links the gateway may not fetch stay in the text, one a line. Pure
functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from transports.shared_files import SharedFile


def split_links(
    body: str, oob_urls: Sequence[str], may_fetch: Callable[[str], bool]
) -> tuple[str, tuple[str, ...]]:
    """The text without the URLs to attach, and those URLs (in order, once each)."""
    to_attach = tuple(dict.fromkeys(url for url in oob_urls if url and may_fetch(url)))
    kept = [line for line in body.split("\n") if line.strip() not in to_attach]
    links = [url for url in oob_urls if url and url not in to_attach and url not in body]
    return "\n".join([*kept, *links]).strip("\n"), to_attach


def final_text(text: str, files: Sequence[SharedFile], unfetched: Sequence[str]) -> str:
    """The mail's text once the files are fetched: links for those that could not be, and a
    line naming the files when the message was nothing but files."""
    lines = [text] if text.strip() else []
    lines += [url for url in unfetched if url not in text]
    if not lines and files:
        lines.append("Attached: " + ", ".join(file.name for file in files))
    return "\n".join(lines)
