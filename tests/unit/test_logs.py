"""Secrets from the config never reach a log line, whatever carries them there."""

from __future__ import annotations

import io
import json
import logging

from component.logs import JsonFormatter, SecretMask


def capture(
    secrets: list[str], formatter: logging.Formatter | None = None
) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(SecretMask(secrets))
    if formatter:
        handler.setFormatter(formatter)
    logger = logging.getLogger(f"test-logs-{id(stream)}")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, stream


def test_secrets_in_messages_arguments_and_tracebacks_are_masked() -> None:
    logger, stream = capture(["tw-auth-token-1234"])
    logger.warning("calling https://AC1:%s@api.twilio.com", "tw-auth-token-1234")
    try:
        raise ValueError("bad token tw-auth-token-1234")
    except ValueError:
        logger.exception("failed")
    text = stream.getvalue()
    assert "tw-auth-token-1234" not in text
    assert "calling https://AC1:***@api.twilio.com" in text
    assert "ValueError: bad token ***" in text


def test_json_lines() -> None:
    logger, stream = capture(["s3cret-value"], JsonFormatter())
    logger.info("secret is %s", "s3cret-value")
    entry = json.loads(stream.getvalue())
    assert entry["msg"] == "secret is ***"
    assert entry["level"] == "info"
