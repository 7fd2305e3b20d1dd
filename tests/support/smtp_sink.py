"""An SMTP server standing in for the smarthost (aiosmtpd, in the test's own event loop).

It records every mail it accepted and can be scripted the way real relays misbehave: stopped
and started again on the same port (an outage), answering 4xx or 5xx to the next N messages
(greylisting, a refusal), or requiring SMTP AUTH.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import warnings
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from support.ports import free_port


@dataclass(frozen=True)
class ReceivedMail:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    login: str | None = None

    @property
    def message(self) -> EmailMessage:
        parsed = BytesParser(policy=policy.default).parsebytes(self.data)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class _Script:
    replies: list[str] = field(default_factory=list)


class SmtpSink:
    """A scriptable relay on 127.0.0.1; ``received`` holds what it accepted, in order."""

    def __init__(self, port: int | None = None, auth: tuple[str, str] | None = None) -> None:
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.auth = auth
        self.received: list[ReceivedMail] = []
        #: DATA transactions seen, accepted or not (to show that a retry happened)
        self.attempts = 0
        self._script = _Script()
        self._server: asyncio.Server | None = None
        self._sessions: list[SMTP] = []
        self._arrived = asyncio.Event()

    # -- lifetime ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen (again) on the same port."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._protocol, self.host, self.port)

    async def stop(self) -> None:
        """Stop listening and cut every open connection, as a crashed relay would."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for session in self._sessions:
            if session.transport is not None:
                session.transport.abort()
        self._sessions.clear()

    async def __aenter__(self) -> SmtpSink:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- scripting ---------------------------------------------------------------------------

    def fail_next(self, count: int, reply: str = "451 4.7.1 Greylisted, try again later") -> None:
        """Answer the next ``count`` messages with ``reply`` (4xx or 5xx) at end of DATA."""
        self._script.replies.extend([reply] * count)

    async def wait_for(self, count: int, timeout: float = 15.0) -> list[ReceivedMail]:
        """Wait until at least ``count`` mails were accepted; return them all."""
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"the SMTP sink got {len(self.received)} mails, not {count}, in {timeout}s"
                )
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)
        return list(self.received)

    # -- aiosmtpd ----------------------------------------------------------------------------

    def _protocol(self) -> SMTP:
        with warnings.catch_warnings():
            # AUTH without TLS is what a loopback test relay does; aiosmtpd warns about it.
            warnings.simplefilter("ignore", UserWarning)
            session = self._smtp()
        self._sessions.append(session)
        return session

    def _smtp(self) -> SMTP:
        return SMTP(
            self,
            hostname="smarthost.test",
            auth_required=self.auth is not None,
            auth_require_tls=False,
            authenticator=self._authenticate if self.auth else None,
        )

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert self.auth is not None
        ok = (
            isinstance(data, LoginPassword)
            and data.login.decode() == self.auth[0]
            and data.password.decode() == self.auth[1]
        )
        if not ok:
            return AuthResult(success=False, handled=False)  # aiosmtpd then answers 535
        return AuthResult(success=True, auth_data=data.login.decode())

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.attempts += 1
        if self._script.replies:
            return self._script.replies.pop(0)
        content = envelope.original_content or envelope.content or b""
        assert isinstance(content, bytes)
        login = session.auth_data if isinstance(session.auth_data, str) else None
        self.received.append(
            ReceivedMail(envelope.mail_from or "", tuple(envelope.rcpt_tos), content, login)
        )
        self._arrived.set()
        return "250 2.0.0 Ok: queued"
