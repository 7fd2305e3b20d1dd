"""Sending through the configured relay with aiosmtplib, with the outcome in outbox terms.

The outbox needs one question answered per attempt: done, try again, or give up. SMTP already
says which: 4xx and a lost connection are temporary, 5xx is final and its text is what the user
should read.
"""

from __future__ import annotations

import logging
from email.message import EmailMessage

import aiosmtplib

from transports.base import DeliveryFailed, RetryLater
from transports.email.settings import Smarthost

log = logging.getLogger(__name__)


async def send_mail(relay: Smarthost, message: EmailMessage, sender: str, recipient: str) -> None:
    """Hand ``message`` to the relay; raise :class:`RetryLater` or :class:`DeliveryFailed`."""
    try:
        await aiosmtplib.send(
            message,
            sender=sender,
            recipients=[recipient],
            hostname=relay.host,
            port=relay.port,
            use_tls=relay.tls,
            start_tls=False if relay.tls else relay.starttls,
            validate_certs=relay.validate_certs,
            username=relay.username,
            password=relay.password.get_secret_value() if relay.password else None,
            timeout=relay.timeout,
        )
    except aiosmtplib.SMTPRecipientsRefused as exc:
        refusal = exc.recipients[0]
        raise _by_code(refusal.code, refusal.message) from None
    except aiosmtplib.SMTPAuthenticationError as exc:
        # The gateway's credentials, not the user's message: keep it until an admin fixes them.
        log.error("the smarthost refused our SMTP AUTH: %s %s", exc.code, exc.message)
        raise RetryLater(f"the mail relay refused the gateway's login ({exc.code})") from None
    except aiosmtplib.SMTPResponseException as exc:
        raise _by_code(exc.code, exc.message) from None
    except (aiosmtplib.SMTPException, OSError) as exc:
        raise RetryLater(f"the mail relay cannot be reached: {exc}") from None


def _by_code(code: int, text: str) -> Exception:
    reply = f"{code} {' '.join(text.split())}".strip()
    if 500 <= code < 600:
        return DeliveryFailed(f"The mail server refused the message: {reply}")
    return RetryLater(f"the mail server deferred the message: {reply}")
