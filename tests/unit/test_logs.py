"""Secrets from the config never reach a log line, whatever carries them there."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from aiosmtpd.smtp import log as aiosmtpd_log

from component.logs import (
    QUIET_LOGGERS,
    JsonFormatter,
    SecretMask,
    reconfigure_logging,
    setup_logging,
)


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


# Secrets that are not in the config: users' own, carried by stanzas, URLs and protocol lines.
# The stanzas below are as the gateway's DEBUG log showed them (component.outgoing's SEND and
# slixmpp's RECV lines), with the values changed.


def logged(*lines: str, secrets: tuple[str, ...] = (), logger_name: str = "") -> str:
    logger, stream = capture(list(secrets))
    if logger_name:  # as a library's logger, e.g. slixmpp's, reaching the same handler
        logger = logging.getLogger(logger_name)
        logger.handlers[:] = logging.getLogger(f"test-logs-{id(stream)}").handlers
        logger.propagate = False
        logger.setLevel(logging.DEBUG)
    for line in lines:
        logger.warning("%s", line)
    return stream.getvalue()


HOOK_CREATED = (
    'SEND: <iq type="result" id="287a" from="hooks.example.org" to="alice@example.org/r">'
    '<command xmlns="http://jabber.org/protocol/commands" node="webhook-create" '
    'sessionid="1796.78" status="completed"><note type="info">Created deploys@hooks.example.org.\n'
    "Inbound URL: http://127.0.0.1:49185/hooks/deploys\n"
    "Secret: whsec_JlIITZiS0gmoo63/5HojUFLWw0t0ps+O\n"
    "Keep the secret now: it is not shown again.</note></command></iq>"
)
HOOK_ROTATED = (
    'SEND: <iq type="result"><command node="webhook-rotate" status="completed"><note type="info">'
    "New secret for deploys@hooks.example.org: whsec_A987DZmkJ3EXIqgNXJ6EN9LkY2+/XCp/\n"
    "Inbound URL: http://127.0.0.1:49185/hooks/deploys</note></command></iq>"
)


def test_hook_secrets_shown_by_commands_are_masked() -> None:
    text = logged(HOOK_CREATED, HOOK_ROTATED)
    assert "whsec_JlIITZiS0gmoo63/5HojUFLWw0t0ps+O" not in text
    assert "whsec_A987DZmkJ3EXIqgNXJ6EN9LkY2+/XCp/" not in text
    assert "Secret: whsec_***\n" in text
    assert "New secret for deploys@hooks.example.org: whsec_***\n" in text
    assert "Inbound URL: http://127.0.0.1:49185/hooks/deploys" in text


SETTINGS_SUBMIT = (
    "RECV: <iq type='set' to='irc.localhost@irc.example.org' id='a1'>"
    "<command xmlns='http://jabber.org/protocol/commands' node='irc-server-settings' "
    "sessionid='s1'><x xmlns='jabber:x:data' type='submit'>"
    "<field var='nick'><value>alicia</value></field>"
    "<field var='password'><value>irc-server-pw-Qm27xv</value></field>"
    "<field var='sasl_password' type='text-private'><value>sasl-pw-Rt58yk</value></field>"
    "<field var='after_connect' type='text-multi'><value>PRIVMSG NickServ :IDENTIFY alicia "
    "ns-pw-Lk33</value><value>MODE alicia +x</value></field>"
    "</x></command></iq>"
)


def test_private_and_password_fields_of_data_forms_are_masked() -> None:
    text = logged(SETTINGS_SUBMIT, logger_name="slixmpp.xmlstream.xmlstream")
    for secret in ("irc-server-pw-Qm27xv", "sasl-pw-Rt58yk", "ns-pw-Lk33"):
        assert secret not in text
    assert "<field var='nick'><value>alicia</value></field>" in text
    assert "<field var='password'><value>***</value></field>" in text
    assert "<field var='sasl_password' type='text-private'><value>***</value></field>" in text
    assert "<value>PRIVMSG NickServ :IDENTIFY ***</value><value>MODE alicia +x</value>" in text


def test_a_private_field_by_type_alone_and_an_empty_one_before_a_filled_one() -> None:
    text = logged(
        '<x type="form"><field var="sasl_password" type="text-private" label="SASL" />'
        '<field var="nick" type="text-single"><value>alicia</value></field>'
        '<field type="text-private" var="pin"><value>4711-xyz</value><value>b</value></field></x>'
    )
    assert '<field var="nick" type="text-single"><value>alicia</value></field>' in text
    assert "4711-xyz" not in text
    assert '<field type="text-private" var="pin"><value>***</value><value>***</value>' in text


def test_in_band_registration_passwords_are_masked() -> None:
    text = logged(
        "RECV: <iq type='set' to='irc.example.org'><query xmlns='jabber:iq:register'>"
        "<username>alice</username><password>reg-pw-Zz91</password></query></iq>"
    )
    assert "reg-pw-Zz91" not in text
    assert "<username>alice</username><password>***</password>" in text


def test_credentials_in_urls_headers_and_irc_lines_are_masked() -> None:
    text = logged(
        "GET https://AC0123:tw-token-9876@api.twilio.com/2010-04-01/Media/ME1 failed",
        "smtp://mailer:smtp-pw-5544@relay.example.net:587 refused",
        "headers: {'Authorization': 'Bearer user-hook-s3cr3t', 'Content-Type': 'text/plain'}",
        "Authorization: Basic dXNlcjpwYXNz",
        "-> PASS irc-pass-1188",
        "-> AUTHENTICATE YWxpY2UAYWxpY2UAcHc=",
        "-> AUTHENTICATE +",
    )
    for secret in (
        "tw-token-9876",
        "smtp-pw-5544",
        "user-hook-s3cr3t",
        "dXNlcjpwYXNz",
        "irc-pass-1188",
        "YWxpY2UAYWxpY2UAcHc=",
    ):
        assert secret not in text
    assert "https://AC0123:***@api.twilio.com/2010-04-01/Media/ME1 failed" in text
    assert "'Authorization': 'Bearer ***', 'Content-Type': 'text/plain'" in text
    assert "-> PASS ***" in text and "-> AUTHENTICATE ***" in text
    assert "-> AUTHENTICATE +" in text


def test_config_secrets_are_masked_in_their_xml_escaped_form_too() -> None:
    text = logged(
        "SEND: <message><body>p&amp;ss&lt;w&apos;rd</body></message>", secrets=("p&ss<w'rd",)
    )
    assert "p&amp;ss&lt;w&apos;rd" not in text
    assert "<body>***</body>" in text


def test_users_secrets_in_tracebacks_are_masked() -> None:
    logger, stream = capture([])
    try:
        raise ValueError("cannot fetch https://AC1:tw-token-4321@api.twilio.com")
    except ValueError:
        logger.exception("media fetch failed")
    assert "tw-token-4321" not in stream.getvalue()
    assert "https://AC1:***@api.twilio.com" in stream.getvalue()


def test_ordinary_text_is_left_as_it_is() -> None:
    lines = (
        "hook alerts: post 42 accepted for 2 target(s)",
        "PRIVMSG #ops :the PASS word is in the news",
        "<message><body>my password is not in a field</body></message>",
        "refused /sms/inbound: bad X-Twilio-Signature for http://127.0.0.1:8380/sms/inbound",
    )
    assert logged(*lines) == "".join(f"{line}\n" for line in lines)


@pytest.fixture
def process_logging() -> Iterator[None]:
    """setup_logging configures the process's root logger: put it back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    quiet = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, quiet_level in quiet.items():
        logging.getLogger(name).setLevel(quiet_level)


def test_smtp_commands_stay_out_of_info(
    process_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """aiosmtpd logs each command with the peer's and the envelope's addresses at INFO."""
    setup_logging("INFO", "text", [])
    aiosmtpd_log.info("('203.0.113.9', 40000) Data: b'MAIL FROM:<juliet@capulet.lit>'")
    aiosmtpd_log.warning("('203.0.113.9', 40000) SMTP session exception")
    logging.getLogger("component.gateway").info("HTTP on 127.0.0.1:8380")
    text = capsys.readouterr().err
    assert "juliet@capulet.lit" not in text
    assert "SMTP session exception" in text  # its problems still show
    assert "HTTP on 127.0.0.1:8380" in text


def test_reload_masks_the_new_secrets_keeps_the_old_masked_and_sets_the_level(
    process_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_logging("DEBUG", "text", ["old-secret-1234"])
    reconfigure_logging("WARNING", ["new-secret-5678"])
    ours = logging.getLogger("component.gateway")
    ours.info("not shown at WARNING")
    ours.warning("secrets: %s %s", "old-secret-1234", "new-secret-5678")
    logging.getLogger("slixmpp").warning("library warnings still show")
    text = capsys.readouterr().err
    assert "not shown" not in text
    assert "secrets: *** ***" in text
    assert "library warnings still show" in text
    reconfigure_logging("DEBUG", [])
    ours.debug("shown again at DEBUG")
    aiosmtpd_log.info("but SMTP commands stay quiet")
    text = capsys.readouterr().err
    assert "shown again at DEBUG" in text and "SMTP commands" not in text
