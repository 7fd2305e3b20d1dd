"""A user's XMPP message as an email.

The From address is always the user's address at the gateway's own domain, so that SPF and
DKIM, which the smarthost applies for that domain, stay aligned. Everything that must be the
same on every retry (Message-ID, threading headers, subject) is decided once, when the message
enters the outbox, and stored with it: a retried send is then the same mail, and a recipient
server that did get the first attempt can drop the copy.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any, cast

from transports.email.reactions import reaction_part
from transports.shared_files import SharedFile

#: How many References a reply carries: enough for threading, short enough for any server.
MAX_REFERENCES = 20
_REPLY_PREFIX = re.compile(r"^\s*(re|aw|sv|antw)\s*:\s*", re.IGNORECASE)


@dataclass(frozen=True)
class Envelope:
    """The headers of one outgoing mail, fixed when it is queued (stored as outbox data)."""

    message_id: str
    from_address: str
    from_name: str
    to_address: str
    subject: str
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    date: float = 0.0
    #: the Message-ID a correction replaces (``Supersedes``, RFC 2156)
    supersedes: str | None = None

    def to_data(self) -> dict[str, Any]:
        data = asdict(self)
        data["references"] = list(self.references)
        return data

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Envelope:
        fields = dict(data)
        fields["references"] = tuple(fields.get("references", ()))
        return cls(**fields)


def new_message_id(domain: str) -> str:
    return make_msgid(domain=domain)


def reply_subject(subject: str) -> str:
    """``Re: …`` once, however many times the thread went back and forth."""
    stripped = subject
    while _REPLY_PREFIX.match(stripped):
        stripped = _REPLY_PREFIX.sub("", stripped, count=1)
    return f"Re: {stripped}" if stripped else ""


def choose_subject(xmpp_subject: str | None, thread_subject: str | None, default: str) -> str:
    """The XMPP subject, else the thread's (as a reply), else the configured default."""
    for candidate in (xmpp_subject, reply_subject(thread_subject or "")):
        if candidate and candidate.strip():
            return " ".join(candidate.split())
    return default


def thread_references(parent_id: str | None, parent_references: tuple[str, ...]) -> tuple[str, ...]:
    """RFC 5322 §3.6.4: the parent's References plus the parent, the root kept when trimmed."""
    if parent_id is None:
        return ()
    chain = [mid for mid in parent_references if mid != parent_id] + [parent_id]
    if len(chain) > MAX_REFERENCES:
        chain = [chain[0], *chain[-(MAX_REFERENCES - 1) :]]
    return tuple(chain)


def body_with_links(body: str, oob_urls: tuple[str, ...]) -> str:
    """Attachments a user sent by OOB (XEP-0066) travel as links in the text."""
    missing = [url for url in oob_urls if url not in body]
    return "\n".join([body, *missing]) if body else "\n".join(missing)


def compose(
    envelope: Envelope,
    body: str,
    files: Sequence[SharedFile] = (),
    reaction: tuple[str, ...] | None = None,
) -> EmailMessage:
    """Build the mail: text/plain in UTF-8, headers from the envelope; then an RFC 9078
    reaction part, or the shared files as attachments (``multipart/mixed``)."""
    message = EmailMessage()
    message["From"] = Address(_one_line(envelope.from_name), addr_spec=envelope.from_address)
    message["To"] = Address(addr_spec=envelope.to_address)
    message["Subject"] = _one_line(envelope.subject)
    message["Date"] = format_datetime(datetime.fromtimestamp(envelope.date or 0, UTC))
    message["Message-ID"] = envelope.message_id
    if envelope.in_reply_to:
        message["In-Reply-To"] = envelope.in_reply_to
    if envelope.references:
        message["References"] = " ".join(envelope.references)
    if envelope.supersedes:
        message["Supersedes"] = envelope.supersedes
    message["Auto-Submitted"] = "no"
    message["X-Mailer"] = "Portway"
    text = body.replace("\r\n", "\n")
    # Quoted-printable keeps non-ASCII text safe through relays without 8BITMIME.
    message.set_content(text, charset="utf-8", cte="7bit" if text.isascii() else "quoted-printable")
    if reaction is not None:
        message.make_mixed()
        # typeshed wants an EmailMessage; a part without its own MIME-Version is what fits
        message.attach(cast("EmailMessage", reaction_part(reaction)))
    for file in files:
        maintype, _, subtype = file.content_type.partition("/")
        message.add_attachment(file.data, maintype, subtype, filename=file.name)
    return message


def _one_line(text: str) -> str:
    """Header text on one line: a line break in a name or subject must not start a header."""
    return " ".join(text.split())
