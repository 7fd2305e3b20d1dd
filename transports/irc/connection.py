"""One IRC client connection on asyncio: TLS, PASS, SASL PLAIN, nick retries, throttling.

Written here rather than on jaraco ``irc``'s asyncio client because that one throttles with
a blocking ``time.sleep`` (it would stall every other user's connection in the loop), has no
SASL, refuses over-long lines instead of splitting them, and decodes with one codec only.

It is an :class:`asyncio.Protocol`, not a pair of stream tasks: a gateway holds one
connection per user and server, so what each one costs while idle is what the gateway costs
per user. Lines are split in ``data_received``; what is written leaves as line_writer.py
says (throttled, one socket write per loop turn); silence is watched by idle.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable, Mapping
from typing import Any

from transports.egress import REFUSED_TEXT, RefusedDestination, resolve_allowed
from transports.irc import identd, idle, isupport
from transports.irc.caps import Capabilities
from transports.irc.casemap import RFC1459, fold
from transports.irc.echoes import Echoes
from transports.irc.line_reader import split_lines
from transports.irc.line_writer import CLOSE_MARK, LineWriter, Written
from transports.irc.modes import DEFAULT_CHANMODES
from transports.irc.pacing import gate
from transports.irc.protocol import (
    IrcLine,
    UnsafeLine,
    build_line,
    decode,
    encode_line,
    parse_line,
)
from transports.irc.registration import (  # ConnectOptions: re-exported
    NICK_ATTEMPTS,
    ConnectOptions,
    RegistrationFailed,
    next_nick,
    refusal,
)
from transports.irc.throttle import TokenBucket
from transports.irc.webirc import webirc_params
from transports.quick_ack import ack_now, ack_socket

log = logging.getLogger(__name__)


class IrcConnection(LineWriter):
    # Slots: a gateway holds one connection per user and server, and a dict of thirty
    # attributes was 1.5 KiB of what each user costs.
    __slots__ = (
        "_ack_socket",
        "_caps",
        "_close_reason",
        "_final",
        "_gate",
        "_holding",
        "_last_read",
        "_nick_attempts",
        "_on_closed",
        "_on_line",
        "_partial",
        "_pinged",
        "_ports",
        "_skipping",
        "_welcome",
        "casemapping",
        "chanmodes",
        "echoes",
        "nick",
        "options",
        "prefix_modes",
        "registered",
        "self_prefix",
    )

    def __init__(
        self,
        options: ConnectOptions,
        on_line: Callable[[IrcLine], None],
        on_closed: Callable[[IrcConnection, str], None],
    ) -> None:
        super().__init__(
            TokenBucket(options.burst, options.lines_per_second) if options.burst else None
        )
        self.options = options
        self.nick = options.nick
        self.prefix_modes = isupport.DEFAULT_PREFIX_MODES
        self.chanmodes = DEFAULT_CHANMODES
        #: the server's CASEMAPPING (ISUPPORT); rfc1459 until it says
        self.casemapping = RFC1459
        #: the user's lines waiting for their echo (echo-message), oldest first
        self.echoes = Echoes()
        #: Our own ``nick!user@host`` as others see it, once known (line splitting counts it).
        self.self_prefix: str | None = None
        self.registered = False
        self._on_line = on_line
        self._on_closed = on_closed
        self._partial = b""
        self._skipping = False
        self._ack_socket: Any = None
        self._last_read = 0.0
        self._pinged = False
        self._welcome: asyncio.Future[None] | None = None
        self._nick_attempts = 0
        self._caps = Capabilities(
            self._send_now,
            self._fail,
            sasl_user=options.username or options.nick,
            sasl_password=options.sasl_password,
        )
        self._gate = gate(
            options.host, options.port, options.connections_per_second, options.max_connections
        )
        self._holding = False
        self._ports: tuple[int, int] | None = None
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
        await self._gate.wait_turn()
        if not self._gate.take():
            raise RegistrationFailed(
                f"the gateway already holds {self._gate.max_connections} connections to this "
                "server, as many as the server allows; try again later"
            )
        self._holding = True
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
        finally:
            if self._transport is None:  # never opened: close() will not run
                self._release()
        if self._closed:  # lost at once
            raise RegistrationFailed(self._close_reason, final=self._final)
        if webirc := self.options.webirc_password:
            # Before anything else: the server decides the user's host on this line.
            self._send_now("WEBIRC", *webirc_params(self.options.user_jid, webirc))
        if self.options.password:
            self._send_now("PASS", self.options.password)
        self._send_now("NICK", self.nick)
        self._caps.start()  # before USER: the server holds the registration until CAP END
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

    @property
    def caps(self) -> frozenset[str]:
        """The IRCv3 capabilities enabled now (CAP NEW and DEL keep it current)."""
        return self._caps.enabled

    def has_cap(self, name: str) -> bool:
        return self._caps.has(name)

    def fold(self, name: str) -> str:
        """The lookup key of a nick or channel name, by this server's CASEMAPPING."""
        return fold(name, self.casemapping)

    def send(
        self,
        command: str,
        *params: str,
        tags: Mapping[str, str] | None = None,
        written: Written | None = None,
    ) -> None:
        """Send a line, behind the throttle; raises UnsafeLine for CR/LF and the like.

        ``tags`` (client tags such as ``+typing``) are escaped; send them only when the
        server has ``message-tags`` (``has_cap``), or it would refuse the line.
        ``written`` is called once the line is written, after the throttle; never if the
        connection closes first.
        """
        data = self._encode(build_line(command, *params, tags=tags))
        if self._closed:
            return
        # Straight out when nothing waits before it; else behind the throttle or the socket.
        waiting = self._queue is not None or self._bucket is not None or self._paused
        if self._transport is not None and not waiting:
            self._write(data)
            if written is not None:
                written()
        else:
            self._enqueue(data if written is None else (data, written))

    def pause_reading(self) -> None:
        """Stop reading the socket while the lines already read wait to be handled."""
        if self._transport is not None and not self._closed and self._transport.is_reading():
            self._transport.pause_reading()

    def resume_reading(self) -> None:
        if self._transport is not None and not self._closed and not self._transport.is_reading():
            self._transport.resume_reading()

    def quit(self, message: str = "") -> None:
        """Send QUIT (after what is queued) and close once it is written."""
        self.send("QUIT", message or "Leaving")
        if not self._closed:
            self._enqueue(CLOSE_MARK)

    def close(self, reason: str = "closed") -> None:
        """Close now; ``on_closed`` is called once, with the reason."""
        if self._closed:
            return
        self._closed = True
        self._close_reason = self._close_reason or reason
        if self._pump_timer is not None:
            self._pump_timer.cancel()
        idle.unwatch(self)
        self._queue = None
        self._release()
        if self._transport is not None:
            self._flush()
            self._transport.close()  # what was written still leaves, then the socket closes
        if self._welcome is not None and not self._welcome.done():
            self._welcome.set_exception(RegistrationFailed(self._close_reason, final=self._final))
            self._welcome.exception()  # retrieved: connect() re-raises it if waiting
        self._on_closed(self, self._close_reason)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def close_reason(self) -> str:
        """Why the connection closed (what ``on_closed`` was told); empty while open."""
        return self._close_reason

    # -- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._ack_socket = ack_socket(transport)  # IRC servers write with Nagle on
        self._register_ident(transport)
        self._last_read = asyncio.get_running_loop().time()
        if not self._closed:
            idle.watch(self)
        self._pump()

    def connection_lost(self, exc: Exception | None) -> None:
        reason = f"connection lost: {exc}" if exc else "the server closed the connection"
        self.close(self._close_reason or reason)

    def data_received(self, data: bytes) -> None:
        ack_now(self._ack_socket)
        self._last_read = asyncio.get_running_loop().time()
        self._pinged = False
        lines, self._partial, self._skipping = split_lines(self._partial, self._skipping, data)
        encoding, fallback = self.options.encoding, self.options.fallback_encoding
        for raw in lines:
            if self._closed:
                return
            text = decode(raw, encoding, fallback)
            if text:
                self._handle(parse_line(text))

    def eof_received(self) -> bool:
        return False  # close; connection_lost says why

    # -- internals -----------------------------------------------------------------------------

    def _encode(self, line: str) -> bytes:
        """Raises UnsafeLine when the encoding would put CR, LF or NUL inside the line."""
        return encode_line(line, self.options.encoding)

    def _register_ident(self, transport: asyncio.Transport) -> None:
        """Let identd name this connection's user (its IRC username) while it is open."""
        local, remote = transport.get_extra_info("sockname"), transport.get_extra_info("peername")
        if isinstance(local, tuple) and isinstance(remote, tuple):
            self._ports = (local[1], remote[1])
            identd.register(*self._ports, self.options.username or self.options.nick)

    def _release(self) -> None:
        """Give back what an open connection holds: its place at the server, its ident."""
        if self._holding:
            self._holding = False
            self._gate.give_back()
        if self._ports is not None:
            identd.unregister(*self._ports)
            self._ports = None

    def _send_now(self, command: str, *params: str) -> None:
        """Write past the throttle: PONG and the registration handshake cannot wait."""
        if self._transport is not None and not self._closed:
            self._write(self._encode(build_line(command, *params)))

    def check_silence(self, now: float) -> None:
        """PING after a silence, and give up if the silence goes on (idle.py's sweep)."""
        if self._closed:
            return
        silent = now - self._last_read
        if self._pinged:
            if silent >= idle.IDLE_PING_SECONDS + idle.IDLE_GIVE_UP_SECONDS:
                self.close("the server stopped answering (ping timeout)")
        elif silent >= idle.IDLE_PING_SECONDS:
            self._pinged = True
            self._send_now("PING", "portway")

    def _handle(self, line: IrcLine) -> None:
        command = line.command
        if command == "PING":
            with contextlib.suppress(UnsafeLine):  # a token we cannot echo (NUL): no PONG
                self._send_now("PONG", *line.params[:1])
            return
        if not self.registered:
            if self._registration_step(line):
                return
        elif command == "CAP":
            self._caps.on_line(line)  # NEW, DEL, late ACK
            return
        elif command in ("NICK", "JOIN", "CHGHOST") and self._is_me(line):
            self._track_self(line)
        if command == "005":
            isupport.apply(self, line.params[1:-1])
        elif command == "ERROR":
            self._close_reason = f"the server said: {line.param(0)}"
        with contextlib.suppress(Exception):
            self._on_line(line)

    def _is_me(self, line: IrcLine) -> bool:
        full = "!" in line.prefix or line.command == "NICK"  # a JOIN tells our full prefix
        return full and self.fold(line.nick) == self.fold(self.nick)

    def _track_self(self, line: IrcLine) -> None:
        """Our own ``nick!user@host``, which line splitting counts, as it changes."""
        if line.command == "JOIN":
            self.self_prefix = line.prefix
        elif line.command == "CHGHOST":
            self.self_prefix = f"{self.nick}!{line.param(0)}@{line.param(1)}"
        else:  # NICK
            self.nick = line.param(0)
            if self.self_prefix:
                self.self_prefix = self.nick + self.self_prefix[self.self_prefix.index("!") :]

    def _registration_step(self, line: IrcLine) -> bool:
        """Handle a line of the handshake; True when it was only for the handshake."""
        command = line.command
        if self._caps.on_line(line):
            return True
        if command == "421" and line.param(1).upper() == "CAP":
            return True  # a server without CAP: registration goes on without it
        if command in ("433", "436"):
            self._nick_attempts += 1
            if self._nick_attempts > NICK_ATTEMPTS:
                self._fail(f"no free nick found after {NICK_ATTEMPTS} tries")
            else:
                self.nick = next_nick(self.options.nick, self._nick_attempts)
                self._send_now("NICK", self.nick)
            return True
        refused = refusal(line, self.options, self.nick)
        if refused is not None:
            self._fail(*refused)
            return True
        if command == "001":
            if self.options.sasl_password and not self._caps.sasl_done:
                # Only a server without CAP gets here: it ignored the SASL request.
                self._fail("a SASL password is set, but the server does not do SASL", final=True)
                return True
            self.registered = True
            self.nick = line.param(0) or self.nick
            if self._welcome is not None and not self._welcome.done():
                self._welcome.set_result(None)
        return False

    def _fail(self, reason: str, final: bool = False) -> None:
        """End the registration with this reason (``final``: retrying cannot help)."""
        self._close_reason = reason
        self._final = final
        self.close(reason)
