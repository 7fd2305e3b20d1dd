"""What services post to a hook, turned into the text of one XMPP message.

Services do not agree on a format, so a hook takes the common ones: plain text, JSON with
``text`` (Slack's incoming webhooks) or ``body``, Alertmanager and Grafana alert notifications,
and HTML form posts. Everything here is pure: bytes and a content type in, a :class:`Post` or
a :class:`PayloadError` (with the HTTP status to answer) out.
"""

from __future__ import annotations

import codecs
import functools
import json
import re
from dataclasses import dataclass
from dataclasses import replace as replace_fields
from email.message import Message
from email.parser import BytesParser
from typing import Any
from urllib.parse import parse_qs

# Characters XML 1.0 cannot carry: they would break the stanza, so they are dropped.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
_SLACK_LINK = re.compile(r"<((?:https?|mailto):[^|>\s]+)(?:\|([^>]+))?>")
#: Deeper JSON than any service posts; Python's parser would otherwise recurse until it fails.
MAX_JSON_DEPTH = 32
#: Python codecs that are no charset: punycode decodes in quadratic time (idna uses it).
_SLOW_CODECS = ("punycode", "idna")
#: Where a multipart body names a charset: RFC 2047 words and RFC 2231 parameters.
_SLOW_CHARSET = re.compile(rb'(?i)(=\?|charset\s*=\s*"?|\*=\s*"?)(punycode|idna)\b')
#: JSON strings (skipped whole, escapes included) and the brackets that nest.
_JSON_NESTING = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{}]')


class PayloadError(Exception):
    """The body cannot be read; ``status`` is the HTTP answer (400 or 415)."""

    def __init__(self, text: str, status: int = 400) -> None:
        super().__init__(text)
        self.text = text
        self.status = status


#: The longest id a post may name in ``replace`` (the ids the gateway hands out are shorter).
MAX_REPLACE_ID = 200


@dataclass(frozen=True)
class Post:
    """The message a post makes, and which of the hook's targets it asks for (none: all).

    ``replace`` names an earlier post of the same hook (the ``id`` its 202 answer gave) whose
    message this one corrects. ``alert_group`` is the alert group an Alertmanager or Grafana
    notification is about: on a hook with ``update_alerts``, later notifications of the group
    correct the first one instead of adding messages.
    """

    text: str
    to: tuple[str, ...] = ()
    replace: str | None = None
    alert_group: str | None = None
    #: every alert of the group is resolved: the next firing starts a new message
    alert_resolved: bool = False


def parse_post(content_type: str, body: bytes) -> Post:
    """Read a posted body by its ``Content-Type`` header (none: plain text)."""
    media, charset = media_type(content_type)
    if media == "text/plain":
        return _post(_decode(body, charset), ())
    if media == "application/json" or media.endswith("+json"):
        return parse_json(_load_json(_decode(body, charset)))
    if media == "application/x-www-form-urlencoded":
        return parse_form(_form_fields(_decode(body, charset)))
    if media == "multipart/form-data":
        return parse_form(_multipart_fields(content_type, body))
    raise PayloadError(
        f"unsupported content type {media}; send text/plain, application/json,"
        " application/x-www-form-urlencoded or multipart/form-data",
        415,
    )


def parse_json(data: Any) -> Post:
    """A JSON object: alert notifications, Slack-style ``text``, or ``body``."""
    if not isinstance(data, dict):
        raise PayloadError("the JSON body must be an object")
    to = _targets(data.get("to"))
    replace = _replace(data.get("replace"))
    if isinstance(data.get("alerts"), list):
        group = data.get("groupKey")
        text = "\n".join(alert_line(alert) for alert in data["alerts"])
        post = _post(text, to, replace, group if isinstance(group, str) and group else None)
        return replace_fields(post, alert_resolved=data.get("status") == "resolved")
    if "ruleName" in data and "state" in data:
        return _post(legacy_grafana_line(data), to, replace)
    if isinstance(data.get("text"), str) and data["text"].strip():
        return _post(slack_text(data["text"]), to, replace)
    if isinstance(data.get("body"), str):
        return _post(data["body"], to, replace)
    attachments = _slack_attachments(data)
    if attachments:
        return _post(attachments, to, replace)
    raise PayloadError("the JSON object needs a text or body string, or alerts")


def parse_form(fields: dict[str, list[str]]) -> Post:
    """Form fields ``text`` or ``body`` and ``to``; or Slack's ``payload`` holding JSON."""
    if "payload" in fields:
        return parse_json(_load_json(fields["payload"][0]))
    text = (fields.get("text") or fields.get("body") or [""])[0]
    if not text.strip():
        raise PayloadError("the form needs a text or body field")
    return _post(
        text, _targets(fields.get("to")), _replace(next(iter(fields.get("replace") or ()), None))
    )


def alert_line(alert: Any) -> str:
    """One Alertmanager or Grafana alert: ``[FIRING] HighCPU on db1: CPU above 90%``."""
    if not isinstance(alert, dict):
        raise PayloadError("each entry of alerts must be an object")
    labels = _mapping(alert.get("labels"))
    notes = _mapping(alert.get("annotations"))
    status = str(alert.get("status") or "unknown").upper()
    name = str(labels.get("alertname") or "alert")
    where = labels.get("instance") or labels.get("job")
    detail = (
        notes.get("summary")
        or notes.get("description")
        or notes.get("message")
        or alert.get("valueString")
    )
    line = f"[{status}] {name}"
    if where:
        line += f" on {where}"
    if detail:
        line += f": {' '.join(str(detail).split())}"
    return line


def legacy_grafana_line(data: dict[str, Any]) -> str:
    """Grafana's legacy alerting notification (``ruleName``, ``state``, ``evalMatches``)."""
    line = f"[{str(data['state']).upper()}] {data['ruleName']}"
    if data.get("message"):
        line += f": {' '.join(str(data['message']).split())}"
    matches = data.get("evalMatches")
    if isinstance(matches, list) and matches:
        values = ", ".join(
            f"{match.get('metric')}={match.get('value')}"
            for match in matches
            if isinstance(match, dict)
        )
        line += f" ({values})"
    return line


def slack_text(text: str) -> str:
    """Slack ``mrkdwn`` to plain text: ``<url|label>`` links and the three escaped characters."""
    text = _SLACK_LINK.sub(
        lambda link: f"{link.group(2)} ({link.group(1)})" if link.group(2) else link.group(1), text
    )
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def clean_text(text: str) -> str:
    """Line ends normalised, characters XML cannot carry removed, outer blank space trimmed."""
    return _NOT_XML.sub("", text.replace("\r\n", "\n").replace("\r", "\n")).strip()


def _post(
    text: str, to: tuple[str, ...], replace: str | None = None, alert_group: str | None = None
) -> Post:
    text = clean_text(text)
    if not text:
        raise PayloadError("nothing to deliver: the message is empty")
    return Post(text, to, replace, alert_group)


def _replace(value: Any) -> str | None:
    """``replace``: the id of an earlier post, as its 202 answer gave it."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > MAX_REPLACE_ID or not value.isprintable():
        raise PayloadError(
            f"replace must be the id of an earlier post (a string of at most {MAX_REPLACE_ID}"
            " characters)"
        )
    return value.strip()


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _slack_attachments(data: dict[str, Any]) -> str:
    """Text of Slack ``attachments`` (``fallback`` is Slack's own plain-text rendering)."""
    attachments = data.get("attachments")
    if not isinstance(attachments, list):
        return ""
    parts = [
        str(item.get("fallback") or item.get("text") or item.get("title") or "")
        for item in attachments
        if isinstance(item, dict)
    ]
    return slack_text("\n".join(part for part in parts if part))


def _targets(value: Any) -> tuple[str, ...]:
    if value is None or value == [] or value == "":
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise PayloadError("to must be a JID or a list of JIDs")
    return tuple(item.strip().lower() for item in items)


def _decode(body: bytes, charset: str | None) -> str:
    encoding = charset or "utf-8"
    try:
        codec = codecs.lookup(encoding)
    except (LookupError, ValueError):  # ValueError: a NUL in the name
        raise PayloadError(f"unknown charset {encoding!r}", 415) from None
    if codec.name in _SLOW_CODECS:
        raise PayloadError(f"unknown charset {encoding!r}", 415)
    try:
        return body.decode(codec.name)
    except LookupError:  # a codec of bytes to bytes (base64, rot13), not a charset
        raise PayloadError(f"unknown charset {encoding!r}", 415) from None
    except ValueError:  # UnicodeError, or another ValueError a codec raises on bad bytes
        raise PayloadError(f"the body is not valid {codec.name}") from None


def _load_json(text: str) -> Any:
    if _nesting(text) > MAX_JSON_DEPTH:
        raise PayloadError(f"the JSON body is nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        return json.loads(text)
    except ValueError as exc:
        raise PayloadError(f"the body is not valid JSON: {exc}") from None


def _nesting(text: str) -> int:
    """How deep JSON's arrays and objects go, counted without parsing (strings skipped).

    Checked before parsing: the parser recurses once per level, so a body of ``[[[[…`` a few
    thousand deep would raise RecursionError, and only slightly less deep, later code would.
    """
    depth = deepest = 0
    for match in _JSON_NESTING.finditer(text):
        token = match.group()
        if token in ("[", "{"):
            depth += 1
            deepest = max(deepest, depth)
        elif token in ("]", "}"):
            depth -= 1
    return deepest


def _form_fields(text: str) -> dict[str, list[str]]:
    try:
        return parse_qs(text, keep_blank_values=True, strict_parsing=bool(text))
    except ValueError:
        raise PayloadError("the body is not a valid form (name=value&…)") from None


#: Distinct ``Content-Type`` headers whose reading is kept: a service sends the same one each
#: time, and the email parser's reading cost more than the rest of the parsing of a short post.
#: Bounded, since the header is the sender's to choose (256 of aiohttp's 8 KiB at most).
MEDIA_TYPES_KEPT = 256


@functools.lru_cache(maxsize=MEDIA_TYPES_KEPT)
def media_type(content_type: str) -> tuple[str, str | None]:
    """``text/plain; charset=latin-1`` → ``("text/plain", "latin-1")``."""
    if not content_type.isascii():  # no valid media type is; the email parser would raise
        return "invalid", None
    header = Message()
    header["Content-Type"] = content_type or "text/plain"
    charset = header.get_param("charset")
    media = header.get_content_type()
    if content_type and content_type.split(";", 1)[0].strip().lower() != media:
        media = "invalid"  # the email parser reads a malformed type as text/plain; we don't
    return media, charset if isinstance(charset, str) else None


def _multipart_fields(content_type: str, body: bytes) -> dict[str, list[str]]:
    """Text fields of a ``multipart/form-data`` body (file parts are ignored)."""
    try:
        head = b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n"
    except UnicodeEncodeError:
        raise PayloadError("the Content-Type header is not valid") from None
    message = BytesParser().parsebytes(_SLOW_CHARSET.sub(rb"\1x-refused-\2", head + body))
    if not message.is_multipart():
        raise PayloadError("the body is not valid multipart/form-data")
    fields: dict[str, list[str]] = {}
    for part in message.get_payload():
        assert isinstance(part, Message)
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or part.get_filename():
            continue
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            fields.setdefault(name, []).append(
                _decode(payload, part.get_content_charset() or "utf-8")
            )
    return fields
