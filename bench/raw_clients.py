"""The benchmarks' raw clients: an XMPP client, a counting component and an IRC client.

Small ones (asyncio streams, expat, byte scans), the same for every measure, so that the
client costs little and costs the same everywhere (bench/irc.py).

Each one acknowledges every read at once (``TCP_QUICKACK``, as the gateway does: see
transports/quick_ack.py). Prosody and InspIRCd write with Nagle's algorithm on, and a
client that only reads may have its ACK delayed, up to about 40 ms here: the two together
stalled a stream of small messages 40 ms at a time. Whether it happened depended on the
shape of the measure, so it hit some and not others: the XMPP ceiling's receiver (a
component) was spared, the IRC→XMPP receiver (a client) was not, and Portway's IRC→XMPP
rate went from about 3,000 to 8,000 msg/s once the receiving client acknowledged at once.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import xml.parsers.expat
from collections.abc import Callable
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

from transports.quick_ack import ack_now, ack_socket

HOST = "127.0.0.1"
DOMAIN = "example.org"
PASSWORD = "bench-pw"
#: the component that only counts what it gets (the XMPP ceiling)
COUNTER_JID = "count.example.org"
COUNTER_SECRET = "counter-bench-secret"

NS_CLIENT = "jabber:client"
NS_STREAM = "http://etherx.jabber.org/streams"
NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
NS_BIND = "urn:ietf:params:xml:ns:xmpp-bind"
NS_MUC = "http://jabber.org/protocol/muc"


# -- a raw XMPP client -------------------------------------------------------------------------


class Writing:
    """What every raw client writes through: its stream writer, once connected."""

    _writer: asyncio.StreamWriter | None = None

    def send(self, data: str) -> None:
        assert self._writer is not None
        self._writer.write(data.encode())

    async def drain(self) -> None:
        assert self._writer is not None
        await self._writer.drain()

    async def _say_goodbye(self, goodbye: str) -> None:
        """Send ``goodbye``, give it up to 5 s to leave, and close the connection."""
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self.send(goodbye)
                await asyncio.wait_for(self._writer.drain(), 5)
            self._writer.close()


class XmppError(Exception):
    pass


@dataclass
class Stanza:
    name: str
    attrs: dict[str, str]
    body: str | None = None
    codes: list[str] = field(default_factory=list)
    error: bool = False


class XmppStream(Writing):
    """A logged-in XMPP client session: SASL PLAIN, bind, presence, groupchat; nothing more.

    Incoming stanzas are parsed with expat and handed to ``on_stanza``; waits in
    :meth:`expect` see them too.
    """

    def __init__(self, user: str, port: int, resource: str = "bench") -> None:
        self.user = user
        self.jid = f"{user}@{DOMAIN}"
        self.full_jid = f"{self.jid}/{resource}"
        self.resource = resource
        self.port = port
        self.on_stanza: Callable[[Stanza], None] | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._waiters: list[tuple[Callable[[Stanza], bool], asyncio.Future[Stanza]]] = []
        self._new_parser()

    def _new_parser(self) -> None:
        parser = xml.parsers.expat.ParserCreate()
        parser.buffer_text = True
        parser.StartElementHandler = self._start
        parser.EndElementHandler = self._end
        parser.CharacterDataHandler = self._chars
        self._parser = parser
        self._depth = 0
        self._stanza: Stanza | None = None
        self._text: list[str] | None = None

    def _start(self, name: str, attrs: dict[str, str]) -> None:
        self._depth += 1
        local = name.rpartition(":")[2]
        if self._depth == 2:
            self._stanza = Stanza(local, attrs)
        elif self._stanza is not None:
            if local == "body" and self._depth == 3:
                self._text = []
            elif local == "status" and "code" in attrs:
                self._stanza.codes.append(attrs["code"])
            elif local == "error":
                self._stanza.error = True

    def _chars(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)

    def _end(self, name: str) -> None:
        if self._depth == 3 and self._text is not None and self._stanza is not None:
            self._stanza.body = "".join(self._text)
            self._text = None
        self._depth -= 1
        if self._depth == 1 and self._stanza is not None:
            stanza, self._stanza = self._stanza, None
            if self.on_stanza is not None:
                self.on_stanza(stanza)
            if self._waiters:
                for entry in list(self._waiters):
                    predicate, future = entry
                    if not future.done() and predicate(stanza):
                        future.set_result(stanza)
                        self._waiters.remove(entry)

    async def _read(self) -> None:
        assert self._reader is not None and self._writer is not None
        try:
            while True:
                data = await self._reader.read(262144)
                if not data:
                    break
                ack_now(ack_socket(self._writer.transport))
                self._parser.Parse(data, False)
        except (ConnectionError, xml.parsers.expat.ExpatError):
            pass
        finally:
            for _, future in self._waiters:
                if not future.done():
                    future.set_exception(XmppError(f"{self.jid}: stream closed"))

    async def expect(self, predicate: Callable[[Stanza], bool], timeout: float = 30.0) -> Stanza:
        future: asyncio.Future[Stanza] = asyncio.get_running_loop().create_future()
        entry = (predicate, future)
        self._waiters.append(entry)
        try:
            return await asyncio.wait_for(future, timeout)
        finally:
            if entry in self._waiters:
                self._waiters.remove(entry)

    def _open(self) -> None:
        self.send(
            f"<?xml version='1.0'?><stream:stream xmlns='{NS_CLIENT}' xmlns:stream='{NS_STREAM}'"
            f" to='{DOMAIN}' version='1.0'>"
        )

    async def connect(self, timeout: float = 60.0) -> None:
        self._reader, self._writer = await asyncio.open_connection(HOST, self.port)
        self._task = asyncio.create_task(self._read())
        is_features: Callable[[Stanza], bool] = lambda s: s.name == "features"  # noqa: E731
        features = asyncio.ensure_future(self.expect(is_features, timeout))
        self._open()
        await features
        token = base64.b64encode(f"\0{self.user}\0{PASSWORD}".encode()).decode()
        outcome = asyncio.ensure_future(
            self.expect(lambda s: s.name in ("success", "failure"), timeout)
        )
        self.send(f"<auth xmlns='{NS_SASL}' mechanism='PLAIN'>{token}</auth>")
        if (await outcome).name != "success":
            raise XmppError(f"{self.jid}: authentication failed")
        # The stream restarts after SASL: a new document, so a new parser.
        self._new_parser()
        features = asyncio.ensure_future(self.expect(is_features, timeout))
        self._open()
        await features
        bound = asyncio.ensure_future(
            self.expect(lambda s: s.name == "iq" and s.attrs.get("id") == "bind", timeout)
        )
        self.send(
            f"<iq type='set' id='bind'><bind xmlns='{NS_BIND}'>"
            f"<resource>{self.resource}</resource></bind></iq>"
        )
        if (await bound).attrs.get("type") != "result":
            raise XmppError(f"{self.jid}: bind failed")
        self.send("<presence/>")

    async def join(self, room: str, nick: str, timeout: float = 60.0) -> None:
        """Join a MUC room; returns on the self-presence (110), raises on an error presence."""
        occupant = f"{room}/{nick}"

        def answered(s: Stanza) -> bool:
            return (
                s.name == "presence"
                and s.attrs.get("from", "").split("/")[0] == room
                and (s.attrs.get("type") == "error" or "110" in s.codes)
            )

        waiting = asyncio.ensure_future(self.expect(answered, timeout))
        self.send(
            f"<presence to={quoteattr(occupant)}><x xmlns='{NS_MUC}'>"
            "<history maxstanzas='0'/></x></presence>"
        )
        reply = await waiting
        if reply.attrs.get("type") == "error":
            raise XmppError(f"{self.jid} could not join {occupant}")

    def groupchat(self, room: str, body: str, ident: str) -> None:
        self.send(
            f"<message to={quoteattr(room)} type='groupchat' id={quoteattr(ident)}>"
            f"<body>{escape(body)}</body></message>"
        )

    async def close(self) -> None:
        await self._say_goodbye("</stream:stream>")
        if self._task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, 5)
            self._task.cancel()


class CountingComponent(Writing):
    """A XEP-0114 component that counts the message bodies it is sent, and does nothing else
    but send room messages when asked (the XMPP ceiling the other way)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.count = 0
        self.changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def connect(self) -> None:
        reader, writer = await asyncio.open_connection(HOST, self.port)
        self._writer = writer
        writer.write(
            f"<stream:stream xmlns='jabber:component:accept' xmlns:stream='{NS_STREAM}'"
            f" to='{COUNTER_JID}'>".encode()
        )
        head = b""
        while b"id=" not in head or b">" not in head.split(b"id=", 1)[1]:
            head += await reader.read(4096)
        quote = head.split(b"id=", 1)[1][:1]
        stream_id = head.split(b"id=" + quote, 1)[1].split(quote, 1)[0].decode()
        digest = hashlib.sha1((stream_id + COUNTER_SECRET).encode()).hexdigest()
        writer.write(f"<handshake>{digest}</handshake>".encode())
        reply = b""
        while b"handshake" not in reply:
            chunk = await reader.read(4096)
            if not chunk:
                raise XmppError("counting component refused")
            reply += chunk
        self._task = asyncio.create_task(self._read(reader, writer))

    async def _read(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        carry = b""
        marker = b"</body>"
        while True:
            data = await reader.read(262144)
            if not data:
                return
            ack_now(ack_socket(writer.transport))
            data = carry + data
            found = data.count(marker)
            carry = data[-(len(marker) - 1) :]
            if found:
                self.count += found
                self.changed.set()

    def room_message(self, room: str, to: str, body: str, ident: str) -> None:
        """A room line from ``room/peer`` to ``to``, shaped as a gateway's (with a stanza id)."""
        assert self._writer is not None
        self._writer.write(
            f"<message type='groupchat' from={quoteattr(room + '/peer')} id={quoteattr(ident)}"
            f" to={quoteattr(to)}><body>{escape(body)}</body><stanza-id xmlns='urn:xmpp:sid:0'"
            f" id={quoteattr(ident)} by={quoteattr(room)}/></message>".encode()
        )

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._task is not None:
            self._task.cancel()


# -- a raw IRC client ---------------------------------------------------------------------------


class IrcPeer(Writing):
    """An IRC client: registers, joins, answers PING, hands PRIVMSG texts to ``on_text``."""

    def __init__(self, port: int, nick: str) -> None:
        self.port = port
        self.nick = nick
        self.on_text: Callable[[bytes], None] | None = None
        self._waiters: list[tuple[bytes, asyncio.Future[bytes]]] = []
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(HOST, self.port)
        self._task = asyncio.create_task(self._read())
        welcome = self.wait_for(b" 001 ")
        self.send(f"NICK {self.nick}\r\nUSER {self.nick} 0 * :bench\r\n")
        await asyncio.wait_for(welcome, 30)

    async def join(self, channel: str) -> None:
        done = self.wait_for(f" 366 {self.nick} {channel} ".encode())
        self.send(f"JOIN {channel}\r\n")
        await asyncio.wait_for(done, 30)

    def wait_for(self, needle: bytes) -> asyncio.Future[bytes]:
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._waiters.append((needle, future))
        return future

    async def _read(self) -> None:
        assert self._reader is not None and self._writer is not None
        carry = b""
        while True:
            data = await self._reader.read(262144)
            if not data:
                return
            ack_now(ack_socket(self._writer.transport))
            lines = (carry + data).split(b"\r\n")
            carry = lines.pop()
            for line in lines:
                if b" PRIVMSG " in line:
                    if self.on_text is not None:
                        self.on_text(line.split(b" :", 1)[1] if b" :" in line else b"")
                    continue
                if line.startswith(b"PING"):
                    self.send("PONG" + line[4:].decode() + "\r\n")
                if self._waiters:
                    for entry in list(self._waiters):
                        if entry[0] in line and not entry[1].done():
                            entry[1].set_result(line)
                            self._waiters.remove(entry)

    async def close(self) -> None:
        await self._say_goodbye("QUIT :bye\r\n")
        if self._task is not None:
            self._task.cancel()
