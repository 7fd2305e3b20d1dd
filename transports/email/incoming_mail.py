"""A received MIME message read into what a chat message can carry.

Mail arrives in every shape: HTML only, legacy charsets, broken MIME. Reading never raises;
whatever could not be read is replaced by a note, so the user still gets the rest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser

from transports.base import AddressError
from transports.email.addressing import normalise_address
from transports.email.bounces import Bounce, read_bounce
from transports.email.html_text import html_to_text
from transports.email.quoting import strip_quoted_tail

_MESSAGE_ID = re.compile(r"<[^<>\s]+>")
UNREADABLE = "(this email could not be read)"


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
    """Parse ``raw`` (the DATA of an SMTP transaction); never raises."""
    message = BytesParser(policy=policy.default).parsebytes(raw)
    sender, nick = _sender(message)
    text = _body_text(message)
    if strip_quotes:
        text = strip_quoted_tail(text)
    try:
        bounce = read_bounce(message)
    except Exception:  # a malformed report is treated as an ordinary mail
        bounce = None
    return IncomingMail(
        sender=sender,
        has_from=bool(_header(message, "From")),
        nick=nick,
        subject=_header(message, "Subject") or None,
        text=text,
        message_id=next(iter(_ids(message, "Message-ID")), None),
        in_reply_to=_ids(message, "In-Reply-To"),
        references=_ids(message, "References"),
        attachments=tuple(_attachments(message)),
        bounce=bounce,
    )


def _header(message: Message, name: str) -> str:
    try:
        value = message.get(name)
    except Exception:  # header defects that policy.default cannot register as defects
        return ""
    return " ".join(str(value).split()) if value is not None else ""


def _ids(message: Message, name: str) -> tuple[str, ...]:
    return tuple(_MESSAGE_ID.findall(_header(message, name)))


def _sender(message: Message) -> tuple[str | None, str | None]:
    try:
        header = message.get("From")
        addresses = getattr(header, "addresses", ()) if header is not None else ()
    except Exception:
        return None, None
    for address in addresses:
        try:
            sender = normalise_address(address.addr_spec)
        except AddressError:
            continue
        nick = " ".join(address.display_name.split()) or None
        return sender, nick
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
        return payload.decode("utf-8", "replace")
    raw = part.get_payload()
    return raw if isinstance(raw, str) else ""


def _body_part(message: Message) -> Message | None:
    if isinstance(message, EmailMessage):
        try:
            return message.get_body(preferencelist=("plain", "html"))
        except Exception:
            return None
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
