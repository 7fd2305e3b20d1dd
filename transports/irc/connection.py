"""One IRC client connection on asyncio: TLS, PASS, SASL PLAIN, nick retries, throttling.

Written here rather than on jaraco ``irc``'s asyncio client because that one throttles with
a blocking ``time.sleep`` (it would stall every other user's connection in the loop), has no
SASL, refuses over-long lines instead of splitting them, and decodes with one codec only.
What is left is small: the registration handshake and two loops, one reading and one writing.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass

from transports.irc.modes import DEFAULT_CHANMODES, DEFAULT_PREFIX, PrefixModes
from transports.irc.protocol import IrcLine, build_line, decode, parse_line
from transports.irc.throttle import TokenBucket

log = logging.getLogger(__name__)

#: Silence after which we PING the server, and then give up on it.
IDLE_PING_SECONDS = 90.0
IDLE_GIVE_UP_SECONDS = 60.0
NICK_ATTEMPTS = 6
MAX_READ_LINE = 65536


class RegistrationFailed(Exception):
    """The server would not let us in (bad password, SASL refused, banned, …), in words."""


@dataclass(frozen=True)
class ConnectOptions:
    host: str
    port: int
    nick: str
    tls: bool = True
    verify_cert: bool = True
    username: str | None = None
    realname: str | None = None
    password: str | None = None
    sasl_password: str | None = None
    encoding: str = "utf-8"
    fallback_encoding: str = "latin-1"
    burst: int | None = 5
    lines_per_second: float = 2.0


def next_nick(nick: str, attempt: int) -> str:
    """The nick to try after ``nick`` was refused as in use: ``nick_``, ``nick__``, ``nick2``…"""
    if attempt <= 2:
        return nick + "_" * attempt
    return f"{nick}{attempt}"


class IrcConnection:
    def __init__(
        self,
        options: ConnectOptions,
        on_line: Callable[[IrcLine], None],
        on_closed: Callable[[IrcConnection, str], None],
    ) -> None:
        self.options = options
        self.nick = options.nick
        self.prefix_modes = PrefixModes.parse(DEFAULT_PREFIX)
        self.chanmodes = DEFAULT_CHANMODES
        #: Our own ``nick!user@host`` as others see it, once known (line splitting counts it).
        self.self_prefix: str | None = None
        self.registered = False
        self._on_line = on_line
        self._on_closed = on_closed
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._outgoing: asyncio.Queue[bytes] = asyncio.Queue()
        self._bucket = (
            TokenBucket(options.burst, options.lines_per_second) if options.burst else None
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._welcome: asyncio.Future[None] | None = None
        self._nick_attempts = 0
        self._closed = False
        self._close_reason = ""

    # -- lifecycle -----------------------------------------------------------------------------

    async def connect(self, timeout: float = 30.0) -> None:
        """Open the connection and register; raises OSError, TimeoutError, RegistrationFailed."""
        context: ssl.SSLContext | None = None
        if self.options.tls:
            context = ssl.create_default_context()
            if not self.options.verify_cert:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
        self._reader, self._writer = await asyncio.wait_for(
            asyncio.open_connection(
                self.options.host, self.options.port, ssl=context, limit=MAX_READ_LINE
            ),
            timeout,
        )
        self._welcome = asyncio.get_running_loop().create_future()
        self._tasks = [
            asyncio.create_task(self._read_loop(), name=f"irc-read-{self.options.host}"),
            asyncio.create_task(self._write_loop(), name=f"irc-write-{self.options.host}"),
        ]
        if self.options.sasl_password:
            self._send_now("CAP", "LS", "302")
        if self.options.password:
            self._send_now("PASS", self.options.password)
        self._send_now("NICK", self.nick)
        username = self.options.username or self.nick
        self._send_now("USER", username, "0", "*", self.options.realname or username)
        try:
            await asyncio.wait_for(asyncio.shield(self._welcome), timeout)
        except BaseException:
            self.close("registration did not complete")
            raise

    def send(self, command: str, *params: str) -> None:
        """Queue a line behind the throttle; raises UnsafeLine for CR/LF and the like."""
        line = build_line(command, *params)
        self._outgoing.put_nowait(self._encode(line))

    @property
    def backlog(self) -> int:
        """Lines waiting behind the throttle."""
        return self._outgoing.qsize()

    def quit(self, message: str = "") -> None:
        """Send QUIT (after what is queued) and close once it is written."""
        self.send("QUIT", message or "Leaving")
        self._outgoing.put_nowait(b"")  # the write loop closes when it reaches this

    def close(self, reason: str = "closed") -> None:
        """Close now; ``on_closed`` is called once, with the reason."""
        if self._closed:
            return
        self._closed = True
        self._close_reason = self._close_reason or reason
        if self._writer is not None:
            self._writer.close()
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()
        if self._welcome is not None and not self._welcome.done():
            self._welcome.set_exception(RegistrationFailed(self._close_reason))
            self._welcome.exception()  # retrieved: connect() re-raises it if waiting
        self._on_closed(self, self._close_reason)

    @property
    def closed(self) -> bool:
        return self._closed

    # -- internals -----------------------------------------------------------------------------

    def _encode(self, line: str) -> bytes:
        return line.encode(self.options.encoding, errors="replace") + b"\r\n"

    def _send_now(self, command: str, *params: str) -> None:
        """Write past the throttle: PONG and the registration handshake cannot wait."""
        if self._writer is not None and not self._closed:
            self._writer.write(self._encode(build_line(command, *params)))

    async def _write_loop(self) -> None:
        assert self._writer is not None
        try:
            while True:
                data = await self._outgoing.get()
                if not data:
                    await self._writer.drain()
                    self.close("quit")
                    return
                if self._bucket is not None:
                    wait = self._bucket.delay()
                    if wait > 0:
                        await asyncio.sleep(wait)
                self._writer.write(data)
                await self._writer.drain()
        except (ConnectionError, OSError) as exc:
            self.close(f"write failed: {exc}")

    async def _read_loop(self) -> None:
        assert self._reader is not None
        reason = "the server closed the connection"
        pinged = False
        try:
            while True:
                try:
                    raw = await asyncio.wait_for(
                        self._reader.readuntil(b"\n"),
                        IDLE_GIVE_UP_SECONDS if pinged else IDLE_PING_SECONDS,
                    )
                except TimeoutError:
                    if pinged:
                        reason = "the server stopped answering (ping timeout)"
                        break
                    pinged = True
                    self._send_now("PING", "portway")
                    continue
                except asyncio.LimitOverrunError:
                    # A line longer than anything valid: skip it, keep the connection.
                    await self._reader.read(MAX_READ_LINE)
                    continue
                pinged = False
                text = decode(
                    raw.rstrip(b"\r\n"), self.options.encoding, self.options.fallback_encoding
                )
                if not text:
                    continue
                line = parse_line(text)
                self._handle(line)
        except asyncio.IncompleteReadError:
            pass
        except (ConnectionError, OSError, ssl.SSLError) as exc:
            reason = f"connection lost: {exc}"
        except asyncio.CancelledError:
            return
        self.close(self._close_reason or reason)

    def _handle(self, line: IrcLine) -> None:
        command = line.command
        if command == "PING":
            self._send_now("PONG", *line.params[:1])
            return
        if not self.registered:
            if self._registration_step(line):
                return
        elif command == "NICK" and line.nick.lower() == self.nick.lower():
            self.nick = line.param(0)
            if self.self_prefix:
                self.self_prefix = self.nick + self.self_prefix[self.self_prefix.index("!") :]
        elif command == "JOIN" and line.nick.lower() == self.nick.lower() and "!" in line.prefix:
            self.self_prefix = line.prefix
        if command == "005":
            self._isupport(line.params[1:-1])
        elif command == "ERROR":
            self._close_reason = f"the server said: {line.param(0)}"
        with contextlib.suppress(Exception):
            self._on_line(line)

    def _registration_step(self, line: IrcLine) -> bool:
        """Handle a line of the handshake; True when it was only for the handshake."""
        command = line.command
        if command == "CAP":
            sub = line.param(1).upper()
            caps = line.param(len(line.params) - 1).split()
            if sub == "LS" and line.param(2) != "*":
                if "sasl" in caps or any(cap.startswith("sasl=") for cap in caps):
                    self._send_now("CAP", "REQ", "sasl")
                else:
                    self._fail("the server does not offer SASL, but a SASL password is set")
            elif sub == "ACK":
                self._send_now("AUTHENTICATE", "PLAIN")
            elif sub == "NAK":
                self._fail("the server refused SASL")
            return True
        if command == "AUTHENTICATE" and line.param(0) == "+":
            user = self.options.username or self.options.nick
            secret = self.options.sasl_password or ""
            payload = base64.b64encode(f"{user}\0{user}\0{secret}".encode()).decode()
            for start in range(0, len(payload), 400):
                self._send_now("AUTHENTICATE", payload[start : start + 400])
            if len(payload) % 400 == 0:
                self._send_now("AUTHENTICATE", "+")
            return True
        if command == "903":
            self._send_now("CAP", "END")
            return True
        if command in ("902", "904", "905", "906", "908"):
            self._fail(f"SASL authentication failed ({line.param(len(line.params) - 1)})")
            return True
        if command in ("433", "436"):
            self._nick_attempts += 1
            if self._nick_attempts > NICK_ATTEMPTS:
                self._fail(f"no free nick found after {NICK_ATTEMPTS} tries")
            else:
                self.nick = next_nick(self.options.nick, self._nick_attempts)
                self._send_now("NICK", self.nick)
            return True
        if command == "432":
            self._fail(f"the server refused the nick {self.nick!r}: {line.param(2)}")
            return True
        if command == "464":
            self._fail("the server refused the password")
            return True
        if command in ("465", "ERROR"):
            self._fail(f"the server refused the connection: {line.param(len(line.params) - 1)}")
            return True
        if command == "001":
            self.registered = True
            self.nick = line.param(0) or self.nick
            if self._welcome is not None and not self._welcome.done():
                self._welcome.set_result(None)
        return False

    def _fail(self, reason: str) -> None:
        self._close_reason = reason
        self.close(reason)

    def _isupport(self, tokens: tuple[str, ...]) -> None:
        for token in tokens:
            key, _, value = token.partition("=")
            if key == "PREFIX":
                self.prefix_modes = PrefixModes.parse(value)
            elif key == "CHANMODES" and value:
                self.chanmodes = value
