"""Refused mail is counted under a reason read from the SMTP reply the sender got."""

from __future__ import annotations

import pytest

from transports.email.smtp_listener import refusal_reason


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ("550 5.1.1 No such user here", "unknown-recipient"),
        ("550 5.7.1 Relaying denied: this server accepts mail only for its own users", "refused"),
        ("550 5.7.1 Refused: a message needs a From header", "refused"),
        ("552 Error: Too much mail data", "too-large"),
        ("500 Error: command not recognized", "smtp-500"),
        ("554 5.7.1 Spam", "smtp-554"),
    ],
)
def test_refusals_are_counted_by_reason(reply: str, reason: str) -> None:
    assert refusal_reason(reply) == reason


@pytest.mark.parametrize(
    "reply",
    [
        "250 2.1.5 Recipient OK",
        "354 End data with <CR><LF>.<CR><LF>",
        "451 4.3.0 Temporary failure storing the message; please try again later",
        "452 4.5.3 Too many recipients",
        "421 4.7.0 MAIL sent too many times",
    ],
)
def test_answers_that_are_not_refusals_are_not_counted(reply: str) -> None:
    assert refusal_reason(reply) is None
