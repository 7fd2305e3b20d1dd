"""CAP LS 302 negotiation: what is requested, how refusals and NEW/DEL are followed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from transports.irc.caps import WANTED, Capabilities
from transports.irc.connection import ConnectOptions, IrcConnection
from transports.irc.protocol import parse_line
from transports.irc.webirc import identity


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[str, ...]] = []
        self.failed: list[tuple[str, bool]] = []

    def send(self, *params: str) -> None:
        self.sent.append(params)

    def fail(self, reason: str, final: bool) -> None:
        self.failed.append((reason, final))


def negotiation(sasl: str | None = None) -> tuple[Capabilities, Recorder]:
    rec = Recorder()
    caps = Capabilities(rec.send, rec.fail, sasl_user="acct", sasl_password=sasl)
    caps.start()
    return caps, rec


def feed(caps: Capabilities, *lines: str) -> None:
    for line in lines:
        assert caps.on_line(parse_line(line))


def test_ls_302_in_several_lines_then_only_wanted_caps_requested_then_end() -> None:
    caps, rec = negotiation()
    feed(
        caps,
        ":srv CAP * LS * :server-time message-tags=draft sts=port=6697 echo-message",
        ":srv CAP * LS :away-notify unknown-cap chghost",
    )
    assert rec.sent[0] == ("CAP", "LS", "302")
    requested = " ".join(p[2] for p in rec.sent if p[:2] == ("CAP", "REQ")).split()
    assert sorted(requested) == [
        "away-notify",
        "chghost",
        "echo-message",
        "message-tags",
        "server-time",
    ]
    assert rec.sent[-1] == ("CAP", "END")
    assert caps.offered["message-tags"] == "draft"
    feed(caps, ":srv CAP me ACK :away-notify chghost echo-message message-tags server-time")
    assert caps.enabled == {"away-notify", "chghost", "echo-message", "message-tags", "server-time"}
    assert caps.has("server-time") and not caps.has("sts")


def test_nothing_offered_that_we_want_ends_at_once() -> None:
    caps, rec = negotiation()
    feed(caps, ":srv CAP * LS :sts=port=1 znc.in/self-message")
    assert rec.sent == [("CAP", "LS", "302"), ("CAP", "END")]
    assert caps.enabled == frozenset()


def test_a_refused_request_is_asked_again_one_cap_at_a_time() -> None:
    caps, rec = negotiation()
    feed(caps, ":srv CAP * LS :server-time batch")
    feed(caps, ":srv CAP me NAK :batch server-time")
    assert ("CAP", "REQ", "batch") in rec.sent and ("CAP", "REQ", "server-time") in rec.sent
    feed(caps, ":srv CAP me ACK :server-time", ":srv CAP me NAK :batch")
    assert caps.enabled == {"server-time"}
    assert rec.sent.count(("CAP", "REQ", "batch")) == 1  # no loop on a single refusal
    assert rec.failed == []


def test_cap_new_requests_what_we_want_and_del_disables() -> None:
    caps, rec = negotiation()
    feed(caps, ":srv CAP * LS :server-time", ":srv CAP me ACK :server-time")
    rec.sent.clear()
    feed(caps, ":srv CAP me NEW :away-notify sts")
    assert rec.sent == [("CAP", "REQ", "away-notify")]
    feed(caps, ":srv CAP me ACK :away-notify")
    assert caps.enabled == {"server-time", "away-notify"}
    feed(caps, ":srv CAP me DEL :server-time")
    assert caps.enabled == {"away-notify"}
    feed(caps, ":srv CAP me ACK :-away-notify")
    assert caps.enabled == frozenset()


def test_sasl_goes_alone_and_end_waits_for_903() -> None:
    caps, rec = negotiation(sasl="pw")
    feed(caps, ":srv CAP * LS :sasl=PLAIN server-time")
    assert rec.sent[1] == ("CAP", "REQ", "sasl")
    assert ("CAP", "END") not in rec.sent
    feed(caps, ":srv CAP me ACK :sasl", ":srv CAP me ACK :server-time")
    assert rec.sent.count(("AUTHENTICATE", "PLAIN")) == 1
    assert caps.on_line(parse_line("AUTHENTICATE +"))
    assert caps.on_line(parse_line(":srv 903 me :SASL successful"))
    assert rec.sent[-1] == ("CAP", "END") and caps.sasl_done


def test_sasl_refused_by_nak_is_final() -> None:
    caps, rec = negotiation(sasl="pw")
    feed(caps, ":srv CAP * LS :sasl", ":srv CAP me NAK :sasl")
    assert rec.failed == [("the server refused to start SASL (CAP NAK)", True)]


def test_numerics_are_not_taken_without_sasl() -> None:
    caps, _ = negotiation()
    assert not caps.on_line(parse_line(":srv 903 me :SASL successful"))
    assert not caps.on_line(parse_line(":srv 001 me :Welcome"))


def test_the_wanted_list_names_the_issue_s_capabilities() -> None:
    assert {
        "server-time",
        "message-tags",
        "echo-message",
        "multi-prefix",
        "away-notify",
        "extended-join",
        "account-notify",
        "chghost",
        "invite-notify",
        "batch",
        "cap-notify",
        "userhost-in-names",
    } <= WANTED


class Server:
    """A scripted IRC server on 127.0.0.1: answers each line with ``respond(line)``."""

    def __init__(self, respond: Callable[[str], list[str]]) -> None:
        self.respond = respond
        self.received: list[str] = []

    async def client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while raw := await reader.readline():
            line = raw.decode().rstrip("\r\n")
            self.received.append(line)
            for answer in self.respond(line):
                writer.write(answer.encode() + b"\r\n")
            await writer.drain()
        writer.close()


async def register(respond: Callable[[str], list[str]], **options: Any) -> tuple[Server, list[str]]:
    server = Server(respond)
    listening = await asyncio.start_server(server.client, "127.0.0.1", 0)
    port = listening.sockets[0].getsockname()[1]
    seen: list[str] = []
    conn = IrcConnection(
        ConnectOptions("127.0.0.1", port, "me", tls=False, burst=None, **options),
        lambda line: seen.append(line.command),
        lambda _conn, _why: None,
    )
    try:
        await conn.connect(timeout=5)
        assert conn.registered
        caps = conn.caps
        conn.close()
    finally:
        listening.close()
        await listening.wait_closed()
    assert caps == frozenset()
    return server, seen


async def test_a_server_without_cap_registers_us_and_its_421_is_not_shown() -> None:
    def respond(line: str) -> list[str]:
        if line.startswith("CAP"):
            return [":srv 421 me CAP :Unknown command"]
        return [":srv 001 me :Welcome"] if line.startswith("USER") else []

    server, seen = await register(respond)
    assert server.received[1] == "CAP LS 302"
    assert "421" not in seen


async def test_webirc_goes_first_with_the_users_identity() -> None:
    def respond(line: str) -> list[str]:
        if line.startswith("CAP LS"):
            return [":srv CAP * LS :"]
        return [":srv 001 me :Welcome"] if line == "CAP END" else []

    server, _ = await register(respond, webirc_password="wpw", user_jid="alice@example.org")
    host, ip = identity("alice@example.org", "wpw")
    assert server.received[0] == f"WEBIRC wpw portway {host} {ip}"
    assert server.received[1:3] == ["NICK me", "CAP LS 302"]
