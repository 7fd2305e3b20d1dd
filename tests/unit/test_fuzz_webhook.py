"""Hook bodies under fuzzing: any bytes, any Content-Type, every shape services post.

Properties: :func:`parse_post` either returns a :class:`Post` whose text is non-empty, clean
and renders as a stanza, or raises :class:`PayloadError` with a 400 or 415; nothing else.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlencode

from hypothesis import example, given, settings
from hypothesis import strategies as st
from support.strategies import assert_renderable, hostile_texts

from transports.webhook.payloads import PayloadError, Post, clean_text, parse_post

FAST = settings(max_examples=100, deadline=None)
CHARSETS = ["utf-8", "latin-1", "utf-16", "cp1252", "idna", "punycode", "rot13", "base64", "x?"]
TYPES = [
    "",
    "text/plain",
    "application/json",
    "application/vnd.grafana+json",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=b0undary",
    "multipart/form-data",
    "text/html",
    "application/json; charset*=utf-8''%ff",
]

text = hostile_texts(40)
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), text)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(text, inner, max_size=4)),
    max_leaves=20,
)
targets = st.one_of(json_values, st.lists(text, max_size=3))


def _maybe(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=fields)


alerts = st.lists(
    st.one_of(
        json_values,
        _maybe(
            status=json_values,
            labels=st.one_of(json_values, _maybe(alertname=json_values, instance=json_values)),
            annotations=st.one_of(
                json_values, _maybe(summary=json_values, description=json_values)
            ),
            valueString=json_values,
        ),
    ),
    max_size=4,
)
documents = st.one_of(
    json_values,
    _maybe(alerts=alerts, to=targets, text=json_values),
    _maybe(
        ruleName=json_values,
        state=json_values,
        message=json_values,
        evalMatches=st.one_of(json_values, st.lists(_maybe(metric=json_values, value=scalars))),
    ),
    _maybe(text=json_values, body=json_values, to=targets),
    _maybe(attachments=st.lists(st.one_of(json_values, _maybe(fallback=json_values, title=text)))),
)


def check(content_type: str, body: bytes) -> None:
    """The property every test below holds a body to."""
    try:
        post = parse_post(content_type, body)
    except PayloadError as exc:
        assert exc.status in (400, 415) and isinstance(exc.text, str) and exc.text
        return
    assert isinstance(post, Post)
    assert post.text and post.text == clean_text(post.text)
    assert all(isinstance(target, str) for target in post.to)
    assert_renderable(post.text)


@FAST
@given(document=documents, ascii_only=st.booleans(), charset=st.sampled_from(CHARSETS[:4]))
@example(document=None, ascii_only=True, charset="utf-8")
def test_json_of_every_shape(document: Any, ascii_only: bool, charset: str) -> None:
    body = json.dumps(document, ensure_ascii=ascii_only)
    try:
        data = body.encode(charset)
    except UnicodeEncodeError:
        data = body.encode("utf-8", "surrogatepass")
    check(f"application/json; charset={charset}", data)


@FAST
@given(
    fields=st.dictionaries(
        st.sampled_from(["text", "body", "to", "payload", "other"]), text, max_size=4
    ),
    payload=st.one_of(st.none(), documents),
)
def test_forms_and_slack_payloads(fields: dict[str, str], payload: Any) -> None:
    if payload is not None:
        fields["payload"] = json.dumps(payload)
    check(
        "application/x-www-form-urlencoded",
        urlencode(fields, encoding="utf-8", errors="surrogatepass").encode(),
    )


part = st.tuples(
    st.one_of(st.sampled_from(["text", "body", "to", "payload"]), text),  # name
    st.one_of(st.none(), text),  # filename
    st.sampled_from([None, "utf-8", "latin-1", "idna", "x?", "utf-16"]),  # charset
    st.sampled_from([None, "base64", "quoted-printable", "8bit", "x-broken"]),
    st.binary(max_size=60),
)


Part = tuple[str, str | None, str | None, str | None, bytes]


def _multipart(parts: list[Part]) -> bytes:
    out = b""
    for name, filename, charset, encoding, payload in parts:
        head = f'Content-Disposition: form-data; name="{name}"'
        if filename is not None:
            head += f'; filename="{filename}"'
        if charset:
            head += f"\r\nContent-Type: text/plain; charset={charset}"
        if encoding:
            head += f"\r\nContent-Transfer-Encoding: {encoding}"
        out += b"--b0undary\r\n" + head.encode("utf-8", "surrogatepass") + b"\r\n\r\n"
        out += payload + b"\r\n"
    return out + b"--b0undary--\r\n"


@FAST
@given(parts=st.lists(part, max_size=4))
@example(parts=[("text", None, "idna", "8bit", b"a" * 70)])
@example(parts=[("payload", None, None, None, b"[" * 5000)])
@example(parts=[("text", None, "utf-8\0", None, b"hi")])
def test_multipart_forms(parts: list[Part]) -> None:
    check("multipart/form-data; boundary=b0undary", _multipart(parts))


@FAST
@given(
    content_type=st.one_of(
        st.sampled_from(TYPES),
        st.builds("text/plain; charset={}".format, st.sampled_from(CHARSETS)),
        hostile_texts(40),
    ),
    body=st.binary(max_size=300),
)
@example(content_type="application/json", body=b"[" * 100_000)
@example(content_type='application/json; charset="utf\0-8"', body=b"{}")
@example(content_type="text/plain; charset=idna", body=b"a" * 70)
@example(content_type="text/plain; charset=rot13", body=b"hi")
@example(content_type="\ud800", body=b"")  # any str in, a Post or a PayloadError out
def test_any_bytes_with_any_content_type(content_type: str, body: bytes) -> None:
    check(content_type, body)


@settings(max_examples=50, deadline=None)
@given(depth=st.integers(min_value=1, max_value=3000), opener=st.sampled_from(["[", '{"text":']))
@example(depth=100_000, opener="[")
def test_deeply_nested_json_is_refused_not_a_crash(depth: int, opener: str) -> None:
    check("application/json", (opener * depth).encode())


def test_a_body_labelled_with_a_quadratic_codec_is_refused_at_once() -> None:
    """Python decodes punycode in quadratic time: a 64 KiB body would hold the loop for s."""
    digits = b"9" * 60_000
    start = time.monotonic()
    check("text/plain; charset=punycode", b"a-" + digits)
    name = b"--b0undary\r\nContent-Disposition: form-data; name*=punycode''a-" + digits
    check("multipart/form-data; boundary=b0undary", name + b"\r\n\r\nhi\r\n--b0undary--\r\n")
    assert time.monotonic() - start < 1.0
