"""What a user's XMPP message becomes as a Twilio message: text and attachments (MMS).

Clients that share a file upload it (XEP-0363) and send its URL both as the body and as OOB
(XEP-0066). Sending that URL as text would give the recipient a link instead of a picture, so
OOB URLs, and body URLs on the user's own server (where uploads live), become ``media_url``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from transports.base import GatewayError, OutboundMessage

#: Twilio takes at most 10 media URLs per message and at most 1600 characters of text.
MAX_MEDIA = 10
MAX_BODY = 1600

_URL = re.compile(r"https?://[^\s<>\"']+")


@dataclass(frozen=True)
class Sms:
    body: str
    media_urls: tuple[str, ...]


def compose(message: OutboundMessage) -> Sms:
    """Split the message into text and attachments; refuse what Twilio would refuse."""
    user_domain = message.user_jid.rpartition("@")[2].lower()
    media: list[str] = []
    for url in message.oob_urls:
        if _is_http(url) and url not in media:
            media.append(url)
    body = message.body
    for url in _URL.findall(body):
        if url in media or _is_upload(url, user_domain):
            if url not in media:
                media.append(url)
            body = body.replace(url, "")
    body = "\n".join(line.rstrip() for line in body.strip().splitlines()).strip()
    if len(media) > MAX_MEDIA:
        raise GatewayError(
            f"An SMS/MMS can carry at most {MAX_MEDIA} attachments; this one has {len(media)}.",
            "not-acceptable",
            "modify",
        )
    if len(body) > MAX_BODY:
        raise GatewayError(
            f"The text is {len(body)} characters long; an SMS can carry at most {MAX_BODY}.",
            "not-acceptable",
            "modify",
        )
    if not body and not media:
        raise GatewayError("The message is empty.", "not-acceptable", "modify")
    return Sms(body=body, media_urls=tuple(media))


def _is_http(url: str) -> bool:
    return urlsplit(url).scheme in ("http", "https") and bool(urlsplit(url).hostname)


def _is_upload(url: str, user_domain: str) -> bool:
    """Whether ``url`` is on the user's server (``example.org`` or ``upload.example.org``)."""
    host = (urlsplit(url).hostname or "").lower()
    return bool(user_domain) and (host == user_domain or host.endswith("." + user_domain))
