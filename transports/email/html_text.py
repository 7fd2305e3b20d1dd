"""HTML mail bodies as readable plain text for an XMPP client.

Many mailers send HTML only. A chat client shows text, so markup becomes line breaks, list
bullets and ``text (link)``; scripts, styles and tracking images are dropped. The stdlib parser
is enough: this is about legibility, not layout.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

_BLOCKS = frozenset(
    {
        "p",
        "div",
        "section",
        "article",
        "header",
        "footer",
        "blockquote",
        "pre",
        "table",
        "ul",
        "ol",
        "dl",
        "dt",
        "dd",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "hr",
        "address",
    }
)
_HIDDEN = frozenset({"script", "style", "head", "title", "template", "noscript"})


class _TextCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0
        self._pre = 0
        self._links: list[str | None] = []
        self._link_text_start: list[int] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self._hidden += 1
        elif tag == "br":
            self.parts.append("\n")
        elif tag == "li":
            self.parts.append("\n- ")
        elif tag in ("td", "th"):
            self.parts.append(" ")
        elif tag == "tr":
            self.parts.append("\n")
        elif tag == "a":
            self._links.append(dict(attrs).get("href"))
            self._link_text_start.append(len(self.parts))
        elif tag in _BLOCKS:
            self.parts.append("\n\n")
            if tag == "pre":
                self._pre += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self.parts.append("\n")
        elif tag == "hr":
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag == "a" and self._links:
            href = self._links.pop()
            start = self._link_text_start.pop()
            shown = "".join(self.parts[start:]).strip()
            if href and href.startswith(("http://", "https://", "mailto:")):
                target = href.removeprefix("mailto:")
                if target not in shown:
                    self.parts.append(f" ({target})")
        elif tag in _BLOCKS:
            self.parts.append("\n\n")
            if tag == "pre":
                self._pre = max(0, self._pre - 1)

    def handle_data(self, data: str) -> None:
        if self._hidden:
            return
        if self._pre:
            self.parts.append(data.replace(" ", "\u00a0"))
        else:
            self.parts.append(re.sub(r"\s+", " ", data))


def html_to_text(html: str) -> str:
    """Readable text from an HTML body; never raises on broken markup."""
    collector = _TextCollector()
    try:
        collector.feed(html)
        collector.close()
    except Exception:  # HTMLParser is lenient; this is a last resort for pathological input
        return re.sub(r"<[^>]*>", " ", html).strip()
    text = "".join(collector.parts)
    lines = [line.strip(" \t") for line in text.split("\n")]
    text = "\n".join(lines).replace("\u00a0", " ")
    return re.sub(r"\n{3,}", "\n\n", text).strip()
