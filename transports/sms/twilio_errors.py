"""Twilio's error codes, in words a person can act on.

Status callbacks carry only a number (``ErrorCode=30003``); the user who texted deserves to
read "the phone is switched off or out of reach", not a code to look up.
"""

from __future__ import annotations

#: The codes people actually meet, from https://www.twilio.com/docs/api/errors.
TWILIO_ERRORS: dict[int, str] = {
    20003: "the gateway's Twilio credentials were refused",
    20429: "Twilio is rate-limiting this account",
    21211: "the number is not a valid phone number",
    21212: "the sending number is not valid",
    21408: "this account may not send SMS to that region",
    21602: "the message has no text and no attachment",
    21606: "the sending number cannot send SMS from this account",
    21610: "the recipient has opted out of messages from this number (they replied STOP)",
    21612: "this route cannot carry the message between these two numbers",
    21614: "the number is not a mobile number",
    21617: "the message is longer than 1600 characters",
    21620: "an attachment URL could not be used",
    21623: "the message has more than 10 attachments",
    30001: "the message waited too long in Twilio's queue",
    30002: "the Twilio account is suspended",
    30003: "the phone is switched off or out of reach",
    30004: "the recipient's carrier blocked the message",
    30005: "the number is unknown or no longer in service",
    30006: "the number is a landline or its carrier cannot take SMS",
    30007: "the carrier filtered the message as spam",
    30008: "the carrier could not deliver it, for an unknown reason",
    30009: "part of a long message went missing on the way",
    30010: "the message cost more than the allowed maximum",
    30019: "the attachment is too large for the recipient's carrier",
    30032: "the sending toll-free number is not verified",
    30034: "the sending number is not registered for A2P 10DLC messaging",
}


def describe_error(code: int | str | None, message: str | None = None) -> str:
    """``30003`` → ``the phone is switched off or out of reach (Twilio error 30003)``.

    Twilio's own ``message`` is preferred for REST errors, where it names the field at fault.
    """
    number = _code(code)
    words = (message or "").strip() or TWILIO_ERRORS.get(number or 0, "")
    if number is None:
        return words or "Twilio did not say why"
    return f"{words} (Twilio error {number})" if words else f"Twilio error {number}"


def _code(code: int | str | None) -> int | None:
    if isinstance(code, int):
        return code
    if isinstance(code, str) and code.strip().isdigit():
        return int(code.strip())
    return None
