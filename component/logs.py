"""Structured logs with secrets masked: the config's, and the users' own.

Secrets can reach a log line in ways no reviewer foresees (an exception quoting a URL, a
library logging a request, slixmpp or the gateway logging every stanza at DEBUG), so masking
happens at the handler, on every record of every logger.

The config's secrets are known and masked by value, raw and XML-escaped (as they appear in a
logged stanza). Users' secrets are not known in advance: a hook's secret shown once by "Create
a hook", the IRC and SASL passwords a user submits in a form, a password in in-band
registration. They are masked by where they sit: values of data-form fields that are
``text-private`` or whose name says password, secret or token; ``<password>`` elements; hook
secrets by their ``whsec_`` shape; credentials in URLs and ``Authorization`` headers; IRC
``PASS``, ``AUTHENTICATE`` and NickServ identification lines.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from xml.sax.saxutils import escape

MASK = "***"

#: A data-form field, with or without values; self-closing fields match alone.
_FIELD = re.compile(r"<field\b(?P<attrs>[^>]*?)(?:/>|>(?P<body>.*?)</field>)", re.S)
_PRIVATE_TYPE = re.compile(r"""\btype\s*=\s*["']text-private["']""")
_SECRET_VAR = re.compile(
    r"""\bvar\s*=\s*["'][^"']*(?:pass|secret|token|credential|api_?key)[^"']*["']""", re.I
)
_VALUE = re.compile(r"(<value\b[^>]*>)[^<]*(</value>)")
#: Each pattern's first group is kept and the rest of the match masked.
_SHAPES = (
    # XEP-0077 in-band registration, and any other password element
    re.compile(r"(<password\b[^>/]*>)[^<]*(?=</password>)"),
    # hook secrets (Standard Webhooks), wherever they appear
    re.compile(r"(whsec_)[A-Za-z0-9+/=]+"),
    # user:password@ in any URL
    re.compile(r"(\b[a-z][a-z0-9+.-]*://[^\s:/@'\"<>]+:)[^\s@/'\"<>]+(?=@)", re.I),
    # Authorization headers, as text or as a logged dict
    re.compile(
        r"""(\bauthorization['"]?\s*[:=]\s*['"]?(?:(?:bearer|basic|token)\s+)?)[^\s'",}]+""",
        re.I,
    ),
    # IRC: the server password and SASL payload ("AUTHENTICATE +" is no secret)
    re.compile(
        r"(\b(?:PASS|AUTHENTICATE) )(?!\+(?:$|[\r\n'\"]))"
        r"(?::[^\r\n'\"<]*|[^\s'\"<]+(?=$|[\r\n'\"<]))",
        re.M,
    ),
    # services identification, e.g. an after-connect "PRIVMSG NickServ :IDENTIFY nick pw"
    re.compile(
        r"(\bNickServ\s+:?(?:IDENTIFY|GHOST|RECOVER|RELEASE|REGAIN|REGISTER)\b\s*)[^<\r\n'\"]+",
        re.I,
    ),
)


def redact(text: str) -> str:
    """``text`` with users' secrets masked by where they sit (see the module's docstring)."""
    if "<field" in text:
        text = _FIELD.sub(_mask_private_field, text)
    for shape in _SHAPES:
        text = shape.sub(lambda match: match.group(1) + MASK, text)
    return text


def _mask_private_field(match: re.Match[str]) -> str:
    attrs, body = match.group("attrs"), match.group("body")
    if body is None or not (_PRIVATE_TYPE.search(attrs) or _SECRET_VAR.search(attrs)):
        return match.group(0)
    return match.group(0).replace(body, _VALUE.sub(rf"\g<1>{MASK}\g<2>", body), 1)


class SecretMask(logging.Filter):
    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets: list[str] = []
        self.add(secrets)

    def add(self, secrets: list[str]) -> None:
        """Mask these too; a reloaded config's secrets join the old ones, which may still
        be in flight (a stanza queued before the reload, a library's retry)."""
        known = {s for s in secrets if len(s) >= 4}
        # As a stanza carries them, too: "a&b" is logged as "a&amp;b".
        known |= {escape(s, {"'": "&apos;", '"': "&quot;"}) for s in known}
        # Longest first, so a secret containing another is masked whole.
        self.secrets = sorted(known | set(self.secrets), key=len, reverse=True)

    def mask(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return redact(text)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = self.mask(record.getMessage()), None
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text, record.exc_info = self.mask(text), None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_text:
            entry["exc"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


#: Libraries whose INFO is noise to an admin, or worse: slixmpp logs connection chatter (and
#: every stanza at DEBUG), and aiosmtpd ("mail.log") a line per SMTP command with the peer's
#: address and the envelope's addresses: a flood, and personal data in the log. Their
#: warnings and errors still show.
QUIET_LOGGERS = ("slixmpp", "aiosqlite", "asyncio", "mail.log")


def setup_logging(level: str, fmt: str, secrets: list[str]) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(SecretMask(secrets))
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().handlers[:] = [handler]
    set_level(level)


def set_level(level: str) -> None:
    root = logging.getLogger()
    root.setLevel(level)
    for quiet in QUIET_LOGGERS:
        logging.getLogger(quiet).setLevel(max(logging.WARNING, root.level))


def reconfigure_logging(level: str, secrets: list[str]) -> None:
    """On a reload (SIGHUP): the new level, and the new config's secrets masked from now on.

    Called before anything of the new config is used, so that no new secret reaches a line
    unmasked. The format stays: a collector parsing the lines would break mid-stream.
    """
    for handler in logging.getLogger().handlers:
        for masking in handler.filters:
            if isinstance(masking, SecretMask):
                masking.add(secrets)
    set_level(level)
