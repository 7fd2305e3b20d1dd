"""Delivery status notifications (RFC 3464) read into a reason a person can act on.

A bounce is a multipart/report full of headers; forwarding it as a chat message would bury
the one fact the user needs ("juliet@capulet.lit does not exist") under machine text. It is
matched to the original by the Message-ID the gateway gave it, and becomes an error for that
XMPP message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import EmailMessage, Message
from email.parser import HeaderParser

_MESSAGE_ID = re.compile(r"<[^<>\s]+>")

#: RFC 3463 enhanced status codes, the ones users meet, in words.
_STATUS_WORDS = {
    "5.1.1": "the mailbox does not exist",
    "5.1.2": "the mail domain does not exist",
    "5.1.10": "the address has no mail server",
    "5.2.1": "the mailbox is disabled",
    "5.2.2": "the mailbox is full",
    "4.2.2": "the mailbox is full",
    "5.2.3": "the message is too large for the mailbox",
    "5.3.4": "the message is too large",
    "5.4.4": "the mail domain cannot be reached",
    "4.4.1": "the mail server did not answer",
    "4.4.7": "the message waited too long and was given up",
    "5.4.7": "the message waited too long and was given up",
    "5.7.1": "the receiving server refused it by policy",
    "5.7.26": "the receiving server refused it as unauthenticated (SPF/DKIM/DMARC)",
}
_CLASS_WORDS = {"4": "a temporary failure", "5": "a permanent failure"}


@dataclass(frozen=True)
class Bounce:
    """What a DSN says happened to one message the gateway sent."""

    original_message_id: str | None
    recipient: str | None
    action: str  # failed, delayed, delivered, relayed, expanded
    status: str
    diagnostic: str

    @property
    def failed(self) -> bool:
        return self.action == "failed"

    def reason(self) -> str:
        """The bounce in one sentence."""
        who = self.recipient or "the recipient"
        words = _STATUS_WORDS.get(self.status) or _CLASS_WORDS.get(self.status[:1], "")
        detail = f": {words}" if words else ""
        server = f" (the server said: {self.diagnostic})" if self.diagnostic else ""
        return f"The email to {who} could not be delivered{detail}{server}"


def is_report(message: Message) -> bool:
    report_type = message.get_param("report-type")
    return (
        message.get_content_type() == "multipart/report"
        and isinstance(report_type, str)
        and report_type.lower() == "delivery-status"
    )


def read_bounce(message: Message) -> Bounce | None:
    """Read a DSN; ``None`` when it is not one or has no per-recipient block."""
    if not is_report(message):
        return None
    original: str | None = None
    fields: list[Message] = []
    for part in message.walk():
        content_type = part.get_content_type()
        if content_type == "message/delivery-status":
            payload = part.get_payload()
            if isinstance(payload, list):
                fields.extend(block for block in payload if isinstance(block, Message))
        elif content_type == "message/rfc822" and original is None:
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                original = _message_id(inner[0])
        elif content_type == "text/rfc822-headers" and original is None:
            text = _text(part)
            original = _message_id(HeaderParser().parsestr(text)) if text else None
    recipients = [block for block in fields if block.get("Action") or block.get("Final-Recipient")]
    if not recipients:
        return None
    # One message has one contact, so the first failed recipient is the one that matters.
    chosen = next(
        (b for b in recipients if str(b.get("Action", "")).strip().lower() == "failed"),
        recipients[0],
    )
    return Bounce(
        original_message_id=original,
        recipient=_typed_value(chosen.get("Final-Recipient") or chosen.get("Original-Recipient")),
        action=str(chosen.get("Action", "")).strip().lower(),
        status=str(chosen.get("Status", "")).strip(),
        diagnostic=_typed_value(chosen.get("Diagnostic-Code")) or "",
    )


def _typed_value(value: object) -> str | None:
    """``rfc822; juliet@capulet.lit`` → ``juliet@capulet.lit`` (RFC 3464 typed fields)."""
    if value is None:
        return None
    text = " ".join(str(value).split())
    return text.split(";", 1)[1].strip() if ";" in text else text


def _message_id(headers: Message) -> str | None:
    found = _MESSAGE_ID.search(str(headers.get("Message-ID", "")))
    return found.group(0) if found else None


def _text(part: Message) -> str:
    if isinstance(part, EmailMessage):
        try:
            content = part.get_content()
            if isinstance(content, str):
                return content
        except Exception:  # unknown charset or broken encoding: fall back to raw bytes
            pass
    payload = part.get_payload(decode=True)
    return payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
