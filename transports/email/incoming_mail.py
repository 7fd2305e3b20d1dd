"""A received MIME message read into what a chat message can carry.

Mail arrives in every shape: HTML only, legacy charsets, broken MIME. Reading never raises;
whatever could not be read is replaced by a note, so the user still gets the rest. The SMTP
side refuses a mail only for what it lacks (a From), never because MIME was malformed.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from email import policy
from email.header import decode_header, make_header
from email.headerregistry import BaseHeader
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses
from itertools import islice

from transports.base import AddressError
from transports.email.addressing import normalise_address
from transports.email.bounces import Bounce, read_bounce
from transports.email.html_text import html_to_text
from transports.email.outgoing_mail import MAX_REFERENCES
from transports.email.quoting import strip_quoted_tail
from transports.email.reactions import read_reaction

log = logging.getLogger(__name__)
#: A message id, at most as long as a mail's line may be (RFC 5322: 998): ids are kept for
#: good (threading, replies), and a longer one is no id but a way to store megabytes.
_MESSAGE_ID = re.compile(r"<[^<>\s]{1,996}>")
#: Where a mail names a charset (Content-Type, RFC 2047 words, RFC 2231 parameters), the two
#: Python codecs that are no mail charset: punycode decodes in quadratic time (idna uses it),
#: so a 10 MB mail labelled with it would hold the event loop, and all mail, for hours.
_SLOW_CHARSET = re.compile(rb'(?i)(=\?|charset\s*=\s*"?|\*=\s*"?)(punycode|idna)\b')
#: Multipart boundaries a mail may declare. The stdlib parser checks each line against every
#: open boundary, so its time grows with lines × nesting: 270 KB nested 400 deep took 7 s of
#: the event loop. Real mail declares a handful; past this, only the headers are read.
MAX_MULTIPARTS = 64
_BOUNDARY = re.compile(rb"(?i)boundary\s*\*?\s*=")
#: Lines that may delimit a MIME part (every delimiter starts a line with ``--``). One
#: boundary can delimit as many parts as the mail's size allows, and each costs the stdlib
#: parser about half a millisecond: 20,000 one-byte parts (620 KB) took 13 s of CPU, holding
#: the GIL the event loop needs. Real mail has a few dozen; past this, only the headers are
#: read.
MAX_PARTS = 1000
#: Characters of a subject kept (it is stored for good, for the "Re:" of replies).
MAX_SUBJECT = 998
UNREADABLE = "(this email could not be read)"
TOO_MANY_PARTS = "(this email has too many MIME parts: only its headers were read)"


@dataclass(frozen=True)
class Attachment:
    filename: str | None
    content_type: str
    data: bytes


@dataclass(frozen=True)
class IncomingMail:
    sender: str | None  # the From address, validated and lower-cased
    has_from: bool  # whether there was a From header at all (valid or not)
    nick: str | None  # the From display name
    subject: str | None
    text: str
    message_id: str | None  # with angle brackets, as in the header
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    attachments: tuple[Attachment, ...]
    bounce: Bounce | None
    #: an RFC 9078 reaction: the sender's emoji on the mail ``in_reply_to`` names
    reaction: tuple[str, ...] | None = None
    #: the Message-ID this mail replaces (``Supersedes``, RFC 2156): a correction
    supersedes: str | None = None

    def thread_ids(self) -> tuple[str, ...]:
        """Message-IDs this mail answers, nearest first (In-Reply-To, then References)."""
        seen: list[str] = []
        for mid in (*self.in_reply_to, *reversed(self.references)):
            if mid not in seen:
                seen.append(mid)
        return tuple(seen)

    def thread_root(self) -> str | None:
        """The first mail of the conversation, as far as this one knows it."""
        if self.references:
            return self.references[0]
        if self.in_reply_to:
            return self.in_reply_to[0]
        return self.message_id


def read_mail(raw: bytes, *, strip_quotes: bool = False) -> IncomingMail:
    """Parse ``raw`` (the DATA of an SMTP transaction); never raises.

    The stdlib's strict header parser (``policy.default``) raises on some malformed
    parameters (``Content-Type: text/plain; charset*``), when parsing or on first access.
    Such a mail is read again with the lenient legacy parser: fewer headers are understood,
    but the sender, subject and text still come through. Of a mail with too many parts
    (:data:`MAX_MULTIPARTS`) only the headers are read.
    """
    raw = _SLOW_CHARSET.sub(rb"\1x-refused-\2", raw)  # then read as an unknown charset
    whole = (
        next(islice(_BOUNDARY.finditer(raw), MAX_MULTIPARTS, None), None) is None
        and raw.count(b"\n--") < MAX_PARTS
    )
    for mail_policy in (policy.default, policy.compat32):
        try:
            message = BytesParser(policy=mail_policy).parsebytes(raw, headersonly=not whole)
            return _read(message, strip_quotes, whole)
        except Exception:  # the next policy reads it again
            log.info("a mail of %d bytes defeated the %s parser", len(raw), mail_policy)
    return IncomingMail(None, True, None, None, UNREADABLE, None, (), (), (), None)


def _read(message: Message, strip_quotes: bool, whole: bool) -> IncomingMail:
    sender, nick = _sender(message)
    text, attachments, bounce = (
        _content(message, strip_quotes) if whole else (TOO_MANY_PARTS, (), None)
    )
    return IncomingMail(
        sender=sender,
        has_from=bool(_header(message, "From")),
        nick=nick,
        subject=_header(message, "Subject")[:MAX_SUBJECT] or None,
        text=text,
        message_id=next(iter(_ids(message, "Message-ID")), None),
        in_reply_to=_ids(message, "In-Reply-To"),
        references=_trimmed(_ids(message, "References")),
        attachments=attachments,
        bounce=bounce,
        reaction=read_reaction(message) if whole else None,
        supersedes=next(iter(_ids(message, "Supersedes")), None),
    )


def _content(
    message: Message, strip_quotes: bool
) -> tuple[str, tuple[Attachment, ...], Bounce | None]:
    text = _body_text(message)
    if strip_quotes:
        text = strip_quoted_tail(text)
    try:
        bounce = read_bounce(message)
    except Exception:  # a malformed report is treated as an ordinary mail
        bounce = None
    return text, tuple(_attachments(message)), bounce


def _header(message: Message, name: str) -> str:
    try:
        value = message.get(name)
    except Exception:  # header defects that policy.default cannot register as defects
        return ""
    if value is None:
        return ""
    text = str(value) if isinstance(value, BaseHeader) else _decoded_words(value)
    return " ".join(text.split())


def _decoded_words(value: object) -> str:
    """A legacy parser's header value, its RFC 2047 encoded words decoded where possible."""
    try:
        return str(make_header(decode_header(str(value))))
    except Exception:  # an unknown charset or a broken word: shown as written
        return str(value)


def _ids(message: Message, name: str) -> tuple[str, ...]:
    return tuple(_MESSAGE_ID.findall(_header(message, name)))


def _trimmed(chain: tuple[str, ...]) -> tuple[str, ...]:
    """References as the gateway keeps them: the root and the nearest ancestors (RFC 5322
    §3.6.4 allows trimming), as many as its own replies carry."""
    if len(chain) <= MAX_REFERENCES:
        return chain
    return (chain[0], *chain[-(MAX_REFERENCES - 1) :])


def _sender(message: Message) -> tuple[str | None, str | None]:
    try:
        header = message.get("From")
        if header is None or isinstance(header, BaseHeader):
            pairs = [(a.display_name, a.addr_spec) for a in getattr(header, "addresses", ())]
        else:  # the legacy parser's text; names are decoded after the split, never before
            pairs = [(_decoded_words(name), spec) for name, spec in getaddresses([str(header)])]
    except Exception:
        return None, None
    for display_name, addr_spec in pairs:
        try:
            sender = normalise_address(addr_spec)
        except AddressError:
            continue
        return sender, " ".join(display_name.split()) or None
    return None, None


def _decoded(part: Message) -> str:
    """A text part's content, decoded; unknown charsets fall back to UTF-8 with replacement."""
    if isinstance(part, EmailMessage):
        try:
            content = part.get_content()
            if isinstance(content, str):
                return content
        except Exception:  # LookupError for unknown charsets, and broken transfer encodings
            pass
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        payload = None
    if isinstance(payload, bytes):
        try:
            return payload.decode(part.get_content_charset() or "utf-8", "replace")
        except (LookupError, ValueError):  # an unknown charset, or a NUL in its name
            return payload.decode("utf-8", "replace")
    raw = part.get_payload()
    return raw if isinstance(raw, str) else ""


def _body_part(message: Message) -> Message | None:
    if isinstance(message, EmailMessage):
        try:
            return message.get_body(preferencelist=("plain", "html"))
        except Exception:
            return None
    # The legacy parser's messages have no get_body: the first text part not attached.
    for part in message.walk():
        shown = part.get_content_type() in ("text/plain", "text/html")
        if shown and part.get_content_disposition() != "attachment":
            return part
    return None


def _body_text(message: Message) -> str:
    part = _body_part(message)
    if part is None:
        if message.is_multipart():
            return ""
        if message.get_content_maintype() != "text":
            return ""
        part = message
    text = _decoded(part)
    if part.get_content_subtype() == "html":
        text = html_to_text(text)
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    return text


def _attachments(message: Message) -> list[Attachment]:
    body = _body_part(message)
    found: list[Attachment] = []
    for part in message.walk():
        if part is body or part.is_multipart():
            continue
        maintype = part.get_content_maintype()
        disposition = part.get_content_disposition()
        if maintype == "text" and disposition != "attachment":
            continue  # the other alternative of the body, or a text part shown inline
        if maintype == "message" or part.get_content_type() == "message/delivery-status":
            continue
        try:
            data = part.get_payload(decode=True)
        except Exception:
            data = None
        if not isinstance(data, bytes) or not data:
            continue
        found.append(Attachment(part.get_filename(), part.get_content_type(), data))
    return found
