"""Twilio's inbound form posts under fuzzing, through the real handler and HTTP server.

The form has no pure parser: :class:`TwilioWebhooks` reads it. So requests go to the real
aiohttp route with a fake host and a real store. Properties:
- a correctly signed form, whatever its fields hold, is answered 200 or 400 (never 403: the
  signature is right; never 500: Twilio would retry it forever);
- anything else (any bytes, any Content-Type, any signature header) gets a 4xx, never 500;
- what reaches the host is a message whose texts render and whose contact is a normalised
  number.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlencode

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from support.fake_twilio import ACCOUNT_SID, AUTH_TOKEN
from support.strategies import assert_renderable, hostile_texts
from twilio.request_validator import RequestValidator

from mappings.registrations import Registration
from mappings.store import Store
from transports.base import TransportHost
from transports.events import InboundMessage
from transports.sms import SmsTransport
from transports.sms.numbers import normalise_number
from transports.sms.settings import SmsSettings

ALICE = "alice@example.org"
ALICE_NUMBER = "+15550001111"
FRIEND = "+15557654321"
PATH = "/sms/inbound"
RIG = settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


class FakeHost:
    """What the component offers the SMS transport: a store, routes, and a list of events."""

    def __init__(self, store: Store) -> None:
        self.domain = "sms.example.org"
        self.store = store
        self.public_url = "http://127.0.0.1"  # set once the server listens
        self.admins: list[str] = []
        self.connected = True
        self.app = web.Application()
        self.events: list[Any] = []

    def is_allowed(self, user_jid: str) -> bool:
        return True

    def count_rejected(self, reason: str) -> None:
        pass

    def add_route(self, method: str, path: str, handler: Callable[..., Awaitable[Any]]) -> None:
        self.app.router.add_route(method, path, handler)

    async def deliver(
        self, event: Any, *, dedup_key: str | None = None, durable: bool = False
    ) -> bool:
        self.events.append(event)
        return True


@dataclass
class Rig:
    runner: asyncio.Runner
    host: FakeHost
    server: TestServer

    @property
    def url(self) -> str:
        return self.host.public_url + PATH

    def post(self, body: bytes, headers: dict[str, str]) -> int:
        async def send() -> int:
            async with (
                aiohttp.ClientSession() as session,
                session.post(self.url, data=body, headers=headers) as response,
            ):
                await response.read()
                return response.status

        return self.runner.run(send())

    def post_raw(self, head: bytes, body: bytes) -> int:
        """One request written as bytes, so headers can hold what clients refuse to send."""

        async def send() -> int:
            assert self.server.port is not None
            reader, writer = await asyncio.open_connection("127.0.0.1", self.server.port)
            writer.write(head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
            status = await reader.readline()
            writer.close()
            return int(status.split()[1])

        return self.runner.run(send())


async def _start(runner_dir: str) -> tuple[FakeHost, SmsTransport, TestServer]:
    store = await Store.open(f"sqlite:///{runner_dir}/portway.db")
    host = FakeHost(store)
    settings = SmsSettings.model_validate(
        {
            "jid": "sms.example.org",
            "secret": "component-secret",
            "account_sid": ACCOUNT_SID,
            "auth_token": AUTH_TOKEN,
            "api_base_url": "http://127.0.0.1:9",  # never called: no media is fetched here
        }
    )
    transport = SmsTransport(settings, cast("TransportHost", host))
    await transport.prepare()
    await transport.start()
    server = TestServer(host.app, host="127.0.0.1")
    await server.start_server()
    host.public_url = str(server.make_url("")).rstrip("/")
    await store.registrations.save(Registration("sms", ALICE, ALICE_NUMBER))
    return host, transport, server


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    with asyncio.Runner() as runner:
        host, transport, server = runner.run(_start(str(tmp_path_factory.mktemp("twilio"))))
        try:
            yield Rig(runner, host, server)
        finally:
            runner.run(server.close())
            runner.run(transport.stop())
            runner.run(host.store.close())


def _no_surrogates(text: str) -> str:
    """Form text as a client can send it (lone surrogates cannot be UTF-8)."""
    return text.encode("utf-8", "replace").decode()


field = hostile_texts(40).map(_no_surrogates).filter(lambda text: not text.startswith("http"))
numbers = st.one_of(st.sampled_from([FRIEND, "72345", "(555) 765-4321", "+", "", "0"]), field)
forms = st.fixed_dictionaries(
    {
        "AccountSid": st.one_of(st.just(ACCOUNT_SID), field),
        "MessageSid": st.one_of(st.from_regex(r"\ASM[0-9a-f]{32}\Z"), field),
        "From": numbers,
        "To": st.one_of(st.just(ALICE_NUMBER), numbers),
        "Body": field,
    },
    optional={
        "NumMedia": st.one_of(st.sampled_from(["0", "", "-1", "\u0663", "9" * 5000]), field),
        "MediaUrl0": field,
        "SmsSid": field,
        "ProfileName": field,
    },
)


def _new_events(rig: Rig, before: int) -> list[Any]:
    return rig.host.events[before:]


@RIG
@given(fields=forms, extra=st.dictionaries(field, field, max_size=3))
@example(
    fields={
        "AccountSid": ACCOUNT_SID,
        "MessageSid": "SM" + "0" * 32,
        "From": FRIEND,
        "To": ALICE_NUMBER,
        "Body": "\x00\x1b[31m]]><x/>\r\n\ufffe",
        "NumMedia": "9" * 5000,
    },
    extra={},
)
def test_a_signed_form_is_answered_200_or_400(
    rig: Rig, fields: dict[str, str], extra: dict[str, str]
) -> None:
    fields = {**extra, **fields}
    signature = RequestValidator(AUTH_TOKEN).compute_signature(rig.url, fields)
    before = len(rig.host.events)
    status = rig.post(
        urlencode(fields).encode(),
        {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature},
    )
    assert status in (200, 400)
    for event in _new_events(rig, before):
        assert isinstance(event, InboundMessage) and event.user_jid == ALICE
        assert normalise_number(event.contact, "US") == event.contact
        assert_renderable(event.body, nick=event.nick, remote_id=event.remote_id)


@RIG
@given(
    content_type=st.one_of(
        st.sampled_from(
            [
                b"application/x-www-form-urlencoded",
                b"application/x-www-form-urlencoded; charset=latin-1",
                b"application/x-www-form-urlencoded; charset=x-unknown",
                b"multipart/form-data; boundary=b",
                b"text/plain",
            ]
        ),
        st.binary(max_size=40).filter(lambda raw: b"\r" not in raw and b"\n" not in raw),
    ),
    signature=st.one_of(
        st.binary(max_size=40).filter(lambda raw: b"\r" not in raw and b"\n" not in raw),
        st.just(b"\xff\xfe"),
    ),
    body=st.one_of(
        st.binary(max_size=300),
        st.just(b"From=%ff%fe&Body=%C0%80&To=%2B15550001111"),
        st.just(b'--b\r\nContent-Disposition: form-data; name="Body"\r\n\r\n\xff\r\n--b--\r\n'),
    ),
)
@example(content_type=b"application/x-www-form-urlencoded", signature=b"\xff", body=b"Body=hi")
@example(content_type=b"application/x-www-form-urlencoded", signature=b"x", body=b"Body=%ff")
def test_any_request_gets_a_4xx_never_a_500(
    rig: Rig, content_type: bytes, signature: bytes, body: bytes
) -> None:
    before = len(rig.host.events)
    head = (
        b"POST " + PATH.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        b"Content-Type: " + content_type + b"\r\nX-Twilio-Signature: " + signature + b"\r\n"
    )
    status = rig.post_raw(head, body)
    assert 400 <= status < 500, status
    assert _new_events(rig, before) == []
