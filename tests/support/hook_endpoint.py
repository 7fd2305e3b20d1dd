"""A webhook receiver on loopback, as a user's chatbot or automation would run one.

It checks every request's Standard Webhooks signature with its own code (not the gateway's),
so a test that passes shows the gateway signs the way the spec says. Tests script it: answer
the next requests with given statuses, bodies and ``Retry-After``; go down (connections
refused) and come back up on the same port.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .ports import free_port


@dataclass(frozen=True)
class Reply:
    """One scripted answer."""

    status: int = 200
    body: str = ""
    content_type: str = "text/plain"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Received:
    """One request as the endpoint saw it."""

    headers: dict[str, str]
    body: bytes
    signature_ok: bool
    status: int  # what the endpoint answered

    @property
    def json(self) -> Any:
        return json.loads(self.body)


def standard_webhooks_key(secret: str) -> bytes:
    """The spec's rule: ``whsec_`` secrets are base64 of the key; others are raw bytes."""
    if secret.startswith("whsec_"):
        return base64.b64decode(secret.removeprefix("whsec_"))
    return secret.encode()


def signature_valid(secret: str, headers: dict[str, str], body: bytes, now: float) -> bool:
    msg_id = headers.get("webhook-id", "")
    stamp = headers.get("webhook-timestamp", "")
    if not msg_id or not stamp.isdigit() or abs(now - int(stamp)) > 300:
        return False
    mac = hmac.new(
        standard_webhooks_key(secret), f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256
    )
    expected = "v1," + base64.b64encode(mac.digest()).decode()
    return any(
        hmac.compare_digest(candidate, expected)
        for candidate in headers.get("webhook-signature", "").split()
    )


class ScriptedEndpoint:
    """``POST /hook`` (any path, in fact) on 127.0.0.1; unsigned requests get 401."""

    def __init__(self, secret: str = "", port: int | None = None) -> None:
        self.secret = secret
        self.port = port or free_port()
        self.script: list[Reply] = []
        self.default = Reply(204)
        self.received: list[Received] = []
        self._arrived = asyncio.Condition()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def then(self, *replies: Reply) -> None:
        """Answer the next requests with these, in order; then with ``default``."""
        self.script.extend(replies)

    async def up(self) -> None:
        app = web.Application()
        app.router.add_route("POST", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def down(self) -> None:
        """Stop listening: the gateway's next attempts get connection refused."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """Wait until ``count`` requests have arrived in all; return them all."""
        async with self._arrived:
            await asyncio.wait_for(
                self._arrived.wait_for(lambda: len(self.received) >= count), timeout
            )
        return list(self.received)

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {key.lower(): value for key, value in request.headers.items()}
        ok = bool(self.secret) and signature_valid(self.secret, headers, body, time.time())
        reply = self.script.pop(0) if self.script else self.default
        if not ok:
            reply = Reply(401, "bad signature")
        async with self._arrived:
            self.received.append(Received(headers, body, ok, reply.status))
            self._arrived.notify_all()
        return web.Response(
            status=reply.status,
            body=reply.body.encode(),
            content_type=reply.content_type,
            headers=reply.headers,
        )


def alertmanager_payload(*alerts: tuple[str, str, str]) -> dict[str, Any]:
    """An Alertmanager webhook body; each alert is (status, alertname, summary)."""
    return {
        "version": "4",
        "groupKey": '{}:{alertname="HighCPU"}',
        "status": alerts[0][0] if alerts else "firing",
        "receiver": "xmpp",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.local:9093",
        "alerts": [
            {
                "status": status,
                "labels": {"alertname": name, "instance": "db1:9100", "severity": "page"},
                "annotations": {"summary": summary},
                "startsAt": "2024-05-01T10:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus.local/graph",
                "fingerprint": f"{index:016x}",
            }
            for index, (status, name, summary) in enumerate(alerts)
        ],
    }


def grafana_payload(status: str, name: str, value: str) -> dict[str, Any]:
    """A Grafana (unified alerting) webhook body with one alert."""
    return {
        "receiver": "xmpp",
        "status": status,
        "orgId": 1,
        "alerts": [
            {
                "status": status,
                "labels": {"alertname": name, "grafana_folder": "Infra"},
                "annotations": {},
                "startsAt": "2024-05-01T10:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "valueString": value,
                "fingerprint": "a1b2c3",
            }
        ],
        "groupLabels": {"alertname": name},
        "commonLabels": {"alertname": name},
        "commonAnnotations": {},
        "externalURL": "http://grafana.local/",
        "version": "1",
        "groupKey": "{}:{}",
        "truncatedAlerts": 0,
        "title": f"[{status.upper()}:1] {name}",
        "state": "alerting",
        "message": f"**{status.capitalize()}**\n\nValue: {value}",
    }
