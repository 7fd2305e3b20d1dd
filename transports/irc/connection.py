"""One IRC client connection on asyncio: TLS, PASS, SASL PLAIN, nick retries, throttling.

Written here rather than on jaraco ``irc``'s asyncio client because that one throttles with
a blocking ``time.sleep`` (it would stall every other user's connection in the loop), has no
SASL, refuses over-long lines instead of splitting them, and decodes with one codec only.

It is an :class:`asyncio.Protocol`, not a pair of stream tasks: a gateway holds one
connection per user and server, so what each one costs while idle is what the gateway costs
per user. Lines are split in ``data_received``; a line leaves at once when nothing waits
before it, and otherwise behind the throttle, on a timer; silence is watched by one timer.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import ssl
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from transports.egress import REFUSED_TEXT, Network, RefusedDestination, resolve_allowed
from transports.irc.modes import DEFAULT_CHANMODES, DEFAULT_PREFIX, PrefixModes
from transports.irc.protocol import (
    IrcLine,
    UnsafeLine,
    build_line,
    decode,
    encode_line,
    parse_line,
)
from transports.irc.throttle import TokenBucket

log = logging.getLogger(__name__)

#: Silence after which we PING the server, and then give up on it.
IDLE_PING_SECONDS = 90.0
IDLE_GIVE_UP_SECONDS = 60.0
NICK_ATTEMPTS = 6
#: A partial line longer than this is dropped, up to its end: no valid line is that long.
MAX_READ_LINE = 65536
#: In the outgoing queue: close once everything before it is written (after a QUIT).
_CLOSE = b""


class RegistrationFailed(Exception):
    """The server would not let us in (bad password, SASL refused, banned, …), in words.

    ``final`` says that trying again with the same settings cannot help: a refused password
    or certificate stays refused, so the user should hear of it now rather than after every
    reconnect attempt; a dropped connection or a full server may do better next time.
    """

    def __init__(self, reason: str, *, final: bool = False) -> None:
        super().__init__(reason)
        self.final = final


@dataclass(frozen=True)
class ConnectOptions:
    host: str
    port: int
    nick: str
    tls: bool = True
    verify_cert: bool = True
    username: str | None = None
    realname: str | None = None
    #: secrets: kept out of repr, so that no log line or traceback shows them
    password: str | None = field(default=None, repr=False)
    sasl_password: str | None = field(default=None, repr=False)
    encoding: str = "utf-8"
    fallback_encoding: str = "latin-1"
    burst: int | None = 5
    lines_per_second: float = 2.0
    #: None: the admin chose this destination, connect to the name. Otherwise the host is
    #: resolved, each address checked (public, or in these networks), and the connection
    #: made to a checked address, never to the name again (DNS rebinding).
    allowed_networks: tuple[Network, ...] | None = None


def next_nick(nick: str, attempt: int) -> str:
    """The nick to try after ``nick`` was refused as in use: ``nick_``, ``nick__``, ``nick2``…"""
    if attempt <= 2:
        return nick + "_" * attempt
    return f"{nick}{attempt}"


class IrcConnection(asyncio.Protocol):
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
        self._transport: asyncio.Transport | None = None
        self._partial = b""
        self._skipping = False
        #: Lines waiting behind the throttle or for the socket (None when none wait: an
        #: empty deque alone is half a KiB, and a gateway holds thousands of connections).
        self._queue: deque[bytes] | None = None
        self._bucket = (
            TokenBucket(options.burst, options.lines_per_second) if options.burst else None
        )
        self._token_taken = False
        self._pump_timer: asyncio.TimerHandle | None = None
        self._paused = False
        self._last_read = 0.0
        self._pinged = False
        self._idle_timer: asyncio.TimerHandle | None = None
        self._welcome: asyncio.Future[None] | None = None
        self._nick_attempts = 0
        #: capabilities offered so far (CAP LS may take several lines), while registering
        self._offered: list[str] | None = None
        self._sasl_done = False
        self._closed = False
        self._close_reason = ""
        self._final = False

    # -- lifecycle -----------------------------------------------------------------------------

    async def connect(self, timeout: float = 30.0) -> None:
        """Open the connection and register; raises OSError, TimeoutError, RegistrationFailed."""
        context: ssl.SSLContext | None = None
        if self.options.tls:
            context = ssl.create_default_context()
            if not self.options.verify_cert:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
        loop = asyncio.get_running_loop()
        self._welcome = loop.create_future()
        where = f"{self.options.host}:{self.options.port}"
        try:
            await asyncio.wait_for(self._open(context), timeout)
        except RefusedDestination:
            raise RegistrationFailed(REFUSED_TEXT, final=True) from None
        except ssl.SSLCertVerificationError as exc:
            why = exc.verify_message or exc.reason or str(exc)
            raise RegistrationFailed(
                f"TLS certificate verification failed for {where}: {why}", final=True
            ) from None
        except ssl.SSLError as exc:
            raise RegistrationFailed(f"TLS handshake with {where} failed: {exc}") from None
        if self._closed:  # lost at once
            raise RegistrationFailed(self._close_reason, final=self._final)
        if self.options.sasl_password:
            self._offered = []
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
        self._welcome = None

    async def _open(self, context: ssl.SSLContext | None) -> None:
        """Connect the socket: to the name, or to its checked addresses in turn."""
        loop = asyncio.get_running_loop()
        host, port = self.options.host, self.options.port
        if self.options.allowed_networks is None:
            await loop.create_connection(lambda: self, host, port, ssl=context)
            return
        addresses = await resolve_allowed(host, port, self.options.allowed_networks)
        failure: OSError | None = None
        for _family, address in addresses:
            try:
                await loop.create_connection(
                    lambda: self,
                    address,
                    port,
                    ssl=context,
                    server_hostname=host.strip("[]") if context is not None else None,
                )
                return
            except ssl.SSLError:
                raise
            except OSError as exc:
                failure = exc
        raise failure or OSError(f"cannot resolve {host}")

    def send(self, command: str, *params: str) -> None:
        """Send a line, behind the throttle; raises UnsafeLine for CR/LF and the like."""
        data = self._encode(build_line(command, *params))
        if self._closed:
            return
        # Straight out when nothing waits before it; else behind the throttle or the socket.
        waiting = self._queue is not None or self._bucket is not None or self._paused
        if self._transport is not None and not waiting:
            self._transport.write(data)
        else:
            self._enqueue(data)

    def pause_reading(self) -> None:
        """Stop reading the socket while the lines already read wait to be handled."""
        if self._transport is not None and not self._closed and self._transport.is_reading():
            self._transport.pause_reading()

    def resume_reading(self) -> None:
        if self._transport is not None and not self._closed and not self._transport.is_reading():
            self._transport.resume_reading()

    @property
    def backlog(self) -> int:
        """Lines waiting behind the throttle."""
        return len(self._queue) if self._queue else 0

    def quit(self, message: str = "") -> None:
        """Send QUIT (after what is queued) and close once it is written."""
        self.send("QUIT", message or "Leaving")
        if not self._closed:
            self._enqueue(_CLOSE)

    def close(self, reason: str = "closed") -> None:
        """Close now; ``on_closed`` is called once, with the reason."""
        if self._closed:
            return
        self._closed = True
        self._close_reason = self._close_reason or reason
        for timer in (self._pump_timer, self._idle_timer):
            if timer is not None:
                timer.cancel()
        self._queue = None
        if self._transport is not None:
            self._transport.close()  # what was written still leaves, then the socket closes
        if self._welcome is not None and not self._welcome.done():
            self._welcome.set_exception(RegistrationFailed(self._close_reason, final=self._final))
            self._welcome.exception()  # retrieved: connect() re-raises it if waiting
        self._on_closed(self, self._close_reason)

    @property
    def closed(self) -> bool:
        return self._closed

    # -- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._last_read = asyncio.get_running_loop().time()
        self._watch_idle()
        self._pump()

    def connection_lost(self, exc: Exception | None) -> None:
        reason = f"connection lost: {exc}" if exc else "the server closed the connection"
        self.close(self._close_reason or reason)

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self._pump()

    def data_received(self, data: bytes) -> None:
        self._last_read = asyncio.get_running_loop().time()
        self._pinged = False
        if self._skipping:
            end = data.find(b"\n")
            if end < 0:
                return
            data, self._skipping = data[end + 1 :], False
        if self._partial:
            data = self._partial + data
        lines = data.split(b"\n")
        self._partial = lines.pop()
        if len(self._partial) > MAX_READ_LINE:
            # A line longer than anything valid: skip it, keep the connection.
            self._partial, self._skipping = b"", True
        encoding, fallback = self.options.encoding, self.options.fallback_encoding
        for raw in lines:
            if self._closed:
                return
            text = decode(raw.rstrip(b"\r"), encoding, fallback)
            if text:
                self._handle(parse_line(text))

    def eof_received(self) -> bool:
        return False  # close; connection_lost says why

    # -- internals -----------------------------------------------------------------------------

    def _encode(self, line: str) -> bytes:
        """Raises UnsafeLine when the encoding would put CR, LF or NUL inside the line."""
        return encode_line(line, self.options.encoding)

    def _send_now(self, command: str, *params: str) -> None:
        """Write past the throttle: PONG and the registration handshake cannot wait."""
        if self._transport is not None and not self._closed:
            self._transport.write(self._encode(build_line(command, *params)))

    def _enqueue(self, data: bytes) -> None:
        if self._queue is None:
            self._queue = deque()
        self._queue.append(data)
        self._pump()

    def _pump(self) -> None:
        """Write queued lines as the throttle and the socket allow; a timer for the rest."""
        if self._pump_timer is not None:
            return  # already waiting for the throttle
        if self._transport is None:
            return  # connection_made pumps
        queue = self._queue
        while queue and not self._paused and not self._closed:
            if self._bucket is not None and not self._token_taken:
                wait = self._bucket.delay()
                if wait > 0:
                    self._token_taken = True  # this line leaves once the wait is over
                    self._pump_timer = asyncio.get_running_loop().call_later(wait, self._tick)
                    return
            self._token_taken = False
            data = queue.popleft()
            if data == _CLOSE:
                self.close("quit")
                return
            self._transport.write(data)
        if not queue:
            self._queue = None

    def _tick(self) -> None:
        self._pump_timer = None
        self._pump()

    def _watch_idle(self) -> None:
        """PING after a silence, and give up if the silence goes on (one timer, re-armed)."""
        self._idle_timer = None
        if self._closed:
            return
        loop = asyncio.get_running_loop()
        silent = loop.time() - self._last_read
        give_up = IDLE_PING_SECONDS + IDLE_GIVE_UP_SECONDS
        if self._pinged and silent >= give_up:
            self.close("the server stopped answering (ping timeout)")
            return
        if not self._pinged and silent >= IDLE_PING_SECONDS:
            self._pinged = True
            self._send_now("PING", "portway")
        wait = (give_up if self._pinged else IDLE_PING_SECONDS) - silent
        self._idle_timer = loop.call_later(max(wait, 0.5), self._watch_idle)

    def _handle(self, line: IrcLine) -> None:
        command = line.command
        if command == "PING":
            with contextlib.suppress(UnsafeLine):  # a token we cannot echo (NUL): no PONG
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
        last = line.param(len(line.params) - 1)
        if command == "CAP":
            self._cap(line.param(1).upper(), line.param(2) == "*", last.split())
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
            self._sasl_done = True
            self._send_now("CAP", "END")
            return True
        if command in ("902", "904", "905", "906"):
            account = self.options.username or self.options.nick
            said = "" if last.lower().startswith("sasl authentication failed") else f": {last}"
            self._fail(f"SASL authentication failed for account {account!r}{said}", final=True)
            return True
        if command == "908":
            return True  # the mechanisms on offer; the 904 that follows says what failed
        if command in ("433", "436"):
            self._nick_attempts += 1
            if self._nick_attempts > NICK_ATTEMPTS:
                self._fail(f"no free nick found after {NICK_ATTEMPTS} tries")
            else:
                self.nick = next_nick(self.options.nick, self._nick_attempts)
                self._send_now("NICK", self.nick)
            return True
        if command == "432":
            self._fail(f"the server refused the nick {self.nick!r}: {line.param(2)}", final=True)
            return True
        if command == "464":
            what = "wrong" if self.options.password else "missing"
            self._fail(f"the server password (PASS) is {what}: {last}", final=True)
            return True
        if command == "465":
            self._fail(f"the server refused the connection: {last}", final=True)
            return True
        if command == "ERROR":
            # Also "reconnecting too fast" and the like: not final.
            self._fail(f"the server refused the connection: {last}")
            return True
        if command == "001":
            if self.options.sasl_password and not self._sasl_done:
                # Only a server without CAP gets here: it ignored the SASL request.
                self._fail("a SASL password is set, but the server does not do SASL", final=True)
                return True
            self.registered = True
            self._offered = None
            self.nick = line.param(0) or self.nick
            if self._welcome is not None and not self._welcome.done():
                self._welcome.set_result(None)
        return False

    def _cap(self, sub: str, more: bool, caps: list[str]) -> None:
        """CAP negotiation, for SASL only: LS (maybe in several lines), then REQ sasl."""
        if sub == "LS" and self._offered is not None:
            self._offered.extend(caps)
            if more:
                return
            offered = {name: value for name, _, value in (c.partition("=") for c in self._offered)}
            mechanisms = offered.get("sasl")
            if mechanisms is None:
                self._fail("a SASL password is set, but the server does not offer SASL", final=True)
            elif mechanisms and "PLAIN" not in mechanisms.upper().split(","):
                self._fail(f"the server offers SASL only as {mechanisms}, not PLAIN", final=True)
            else:
                self._send_now("CAP", "REQ", "sasl")
        elif sub == "ACK" and "sasl" in caps:
            self._send_now("AUTHENTICATE", "PLAIN")
        elif sub == "NAK":
            self._fail("the server refused to start SASL (CAP NAK)", final=True)

    def _fail(self, reason: str, final: bool = False) -> None:
        self._close_reason = reason
        self._final = final
        self.close(reason)

    def _isupport(self, tokens: tuple[str, ...]) -> None:
        for token in tokens:
            key, _, value = token.partition("=")
            if key == "PREFIX":
                self.prefix_modes = PrefixModes.parse(value)
            elif key == "CHANMODES" and value:
                self.chanmodes = value
