"""Smoke tests for the test harness itself: each throwaway server starts, serves, restarts.

When an end-to-end test of the gateway fails, these tell whether the harness or the
gateway is at fault. They also pin down what Prosody says to components, which the
component code relies on.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import xml.etree.ElementTree as ET

import pytest
from slixmpp import JID
from support.fixture_types import ConnectIrc, ConnectXmpp, MakeNgircd, MakeProsody
from support.irc_client import RawIrcClient
from support.xmpp_client import XmppClient, XmppConnectError

pytestmark = pytest.mark.e2e

STREAM_HEADER = (
    "<stream:stream xmlns='jabber:component:accept' "
    "xmlns:stream='http://etherx.jabber.org/streams' to='{to}'>"
)


async def test_prosody_users_exchange_messages(
    make_prosody: MakeProsody, xmpp_client: ConnectXmpp
) -> None:
    prosody = make_prosody(users={"alice": "alicepw", "bob": "bobpw"})
    alice = await xmpp_client(prosody.jid("alice"), "alicepw", prosody)
    bob = await xmpp_client(prosody.jid("bob"), "bobpw", prosody)

    alice.send_message(prosody.jid("bob"), "hello bob")
    msg = await bob.expect_message(from_=prosody.jid("alice"), body="hello bob")
    assert msg["type"] == "chat"

    # A message to oneself comes back too (bare JID: delivered to the own resource).
    alice.send_message(prosody.jid("alice"), "note to self")
    await alice.expect_message(from_=prosody.jid("alice"), body="note to self")


async def test_xmpp_client_iq_and_buffering(
    make_prosody: MakeProsody, xmpp_client: ConnectXmpp
) -> None:
    prosody = make_prosody(users={"alice": "pw", "bob": "pw"})
    alice = await xmpp_client(prosody.jid("alice"), "pw", prosody)

    reply = await alice.iq(
        f"<iq type='get' to='{prosody.domain}'><query xmlns='jabber:iq:version'/></iq>"
    )
    assert reply["type"] == "result"
    assert reply["software_version"]["name"] == "Prosody"
    # An error reply is returned, not raised.
    reply = await alice.iq(
        f"<iq type='get' to='{prosody.domain}'><query xmlns='urn:example:none'/></iq>"
    )
    assert reply["type"] == "error"
    assert reply["error"]["condition"] == "service-unavailable"

    # Stanzas that an expect skips stay buffered: read the second message first.
    bob = await xmpp_client(prosody.jid("bob"), "pw", prosody)
    bob.send_message(prosody.jid("alice"), "one")
    bob.send_message(prosody.jid("alice"), "two")
    await alice.expect_message(body="two")
    await alice.expect_message(from_=prosody.jid("bob"), body="one", timeout=1)


async def test_prosody_wrong_password_is_refused(
    make_prosody: MakeProsody, xmpp_client: ConnectXmpp
) -> None:
    prosody = make_prosody(users={"alice": "alicepw"})
    with pytest.raises(XmppConnectError, match="authentication failed"):
        await xmpp_client(prosody.jid("alice"), "wrong", prosody)


async def test_prosody_kill_and_restart_keeps_accounts(
    make_prosody: MakeProsody, xmpp_client: ConnectXmpp
) -> None:
    prosody = make_prosody(users={"alice": "alicepw"})
    alice = await xmpp_client(prosody.jid("alice"), "alicepw", prosody)
    c2s_port, component_port = prosody.c2s_port, prosody.component_port

    prosody.kill()
    await alice.wait_disconnected()
    prosody.start()
    assert (prosody.c2s_port, prosody.component_port) == (c2s_port, component_port)

    # Registering works while the server runs, and the account is usable at once.
    prosody.register("carol", "carolpw")
    alice2 = await xmpp_client(prosody.jid("alice"), "alicepw", prosody)
    carol = await xmpp_client(prosody.jid("carol"), "carolpw", prosody)

    await prosody.arestart()  # graceful this time, and without blocking the event loop
    await alice2.wait_disconnected()
    await carol.wait_disconnected()
    alice3 = await xmpp_client(prosody.jid("alice"), "alicepw", prosody)
    assert alice3.connected


async def test_two_prosodys_at_once(make_prosody: MakeProsody, xmpp_client: ConnectXmpp) -> None:
    one = make_prosody(users={"alice": "pw"}, domain="one.test")
    two = make_prosody(users={"alice": "pw"}, domain="two.test")
    assert len({one.c2s_port, one.component_port, two.c2s_port, two.component_port}) == 4
    a1 = await xmpp_client("alice@one.test", "pw", one)
    a2 = await xmpp_client("alice@two.test", "pw", two)
    assert a1.connected and a2.connected


async def test_muc_component_is_there(make_prosody: MakeProsody, xmpp_client: ConnectXmpp) -> None:
    prosody = make_prosody(users={"alice": "pw"})
    muc_domain = prosody.muc_domain
    assert muc_domain == "conference.example.org"
    alice: XmppClient = await xmpp_client(prosody.jid("alice"), "pw", prosody)
    info = await alice.xmpp.plugin["xep_0030"].get_info(jid=JID(muc_domain), timeout=10)
    assert "http://jabber.org/protocol/muc" in info["disco_info"]["features"]
    # The room opens at once (muc_room_locking = false): join completes without configuring.
    await alice.xmpp.plugin["xep_0045"].join_muc_wait(
        JID(f"room@{muc_domain}"), "alice", maxchars=0, timeout=10
    )


async def _component_handshake(
    port: int, to: str, secret: str
) -> tuple[bytes, asyncio.StreamReader, asyncio.StreamWriter]:
    """Open a XEP-0114 stream and send the handshake; return the header and the stream."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(STREAM_HEADER.format(to=to).encode())
    await writer.drain()
    header = b""
    while not re.search(rb"<stream:stream[^>]*>", header):
        chunk = await asyncio.wait_for(reader.read(4096), 5)
        assert chunk, f"stream closed before the header: {header!r}"
        header += chunk
    match = re.search(rb"id='([^']*)'", header)
    assert match, header
    stream_id = match.group(1).decode()
    token = hashlib.sha1((stream_id + secret).encode()).hexdigest()
    writer.write(f"<handshake>{token}</handshake>".encode())
    await writer.drain()
    return header, reader, writer


async def _read_until(reader: asyncio.StreamReader, marker: bytes, timeout: float = 5) -> bytes:
    """Read until marker is in the data or the stream ends."""
    data = b""
    while marker not in data:
        chunk = await asyncio.wait_for(reader.read(4096), timeout)
        if not chunk:
            break
        data += chunk
    return data


async def test_component_handshake_right_and_wrong_secret(make_prosody: MakeProsody) -> None:
    prosody = make_prosody(components={"irc.example.org": "s3cret"})

    header, reader, writer = await _component_handshake(
        prosody.component_port, "irc.example.org", "s3cret"
    )
    # Observed header: <?xml version='1.0'?><stream:stream id='<uuid>'
    #   xmlns:stream='http://etherx.jabber.org/streams' xml:lang='en'
    #   from='irc.example.org' xmlns='jabber:component:accept'>
    assert b"from='irc.example.org'" in header
    assert await _read_until(reader, b"<handshake/>") == b"<handshake/>"

    # Prosody allows one connection per component: a second one with the right secret gets
    #   <stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text
    #   xmlns='urn:ietf:params:xml:ns:xmpp-streams'>Component already connected</text>
    #   </stream:error></stream:stream>   (then the TCP connection is closed)
    _, reader2, writer2 = await _component_handshake(
        prosody.component_port, "irc.example.org", "s3cret"
    )
    data = await _read_until(reader2, b"</stream:stream>")
    assert b"<conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>" in data
    assert b"Component already connected" in data
    writer2.close()
    writer.close()
    await writer.wait_closed()
    await asyncio.sleep(0.2)  # let Prosody notice the first component is gone

    # Wrong secret: Prosody 0.12.3 sends exactly these bytes, then closes the connection:
    #   <stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text
    #   xmlns='urn:ietf:params:xml:ns:xmpp-streams'>Given token does not match calculated
    #   token</text></stream:error></stream:stream>
    # (one line, no spaces between the elements; the <text> wrapped here for length)
    _, reader, writer = await _component_handshake(
        prosody.component_port, "irc.example.org", "wrong"
    )
    data = await _read_until(reader, b"</stream:stream>")
    assert data == (
        b"<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
        b"<text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>"
        b"Given token does not match calculated token</text>"
        b"</stream:error></stream:stream>"
    )
    assert await asyncio.wait_for(reader.read(), 5) == b""  # and the connection closes
    writer.close()

    # An unknown component domain is refused before any handshake, inside a stream header
    # with id='': <stream:error><host-unknown .../><text ...>nope.example.org does not
    # match any configured external components</text></stream:error></stream:stream>
    reader, writer = await asyncio.open_connection("127.0.0.1", prosody.component_port)
    writer.write(STREAM_HEADER.format(to="nope.example.org").encode())
    data = await _read_until(reader, b"</stream:stream>")
    assert b"<host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>" in data
    writer.close()


async def test_privileged_component_gets_permissions(make_prosody: MakeProsody) -> None:
    prosody = make_prosody(components={"irc.example.org": "s3cret"}, privileged=["irc.example.org"])
    _, reader, writer = await _component_handshake(
        prosody.component_port, "irc.example.org", "s3cret"
    )
    # mod_privilege (XEP-0356, urn:xmpp:privilege:2) advertises right after the handshake:
    #   <handshake/><message from='example.org' to='irc.example.org'><privilege
    #   xmlns='urn:xmpp:privilege:2'><perm access='roster' type='both'/><perm
    #   access='message' type='outgoing'/></privilege></message>
    # Attribute order varies from run to run (Lua table order): compare parsed XML only.
    data = await _read_until(reader, b"</message>")
    assert data.startswith(b"<handshake/>")
    message = ET.fromstring(data[len(b"<handshake/>") :])
    assert message.tag == "message"  # no xmlns here: it inherits jabber:component:accept
    assert (message.get("from"), message.get("to")) == ("example.org", "irc.example.org")
    perms = {
        perm.get("access"): perm.get("type")
        for perm in message.iterfind("{urn:xmpp:privilege:2}privilege/{urn:xmpp:privilege:2}perm")
    }
    assert perms == {"roster": "both", "message": "outgoing"}
    writer.close()


async def test_ngircd_channel_messages(make_ngircd: MakeNgircd, irc_client: ConnectIrc) -> None:
    server = make_ngircd()
    alice: RawIrcClient = await irc_client(server, "alice")
    bob: RawIrcClient = await irc_client(server, "bob_with_a_long_nick")
    await alice.join("#test")
    await bob.join("#test")
    await alice.expect(r"^:bob_with_a_long_nick!\S+ JOIN :?#test")

    await alice.privmsg("#test", "hi bob")
    await bob.expect(r"^:alice!\S+ PRIVMSG #test :hi bob$")
    await bob.privmsg("#test", "hi alice")
    await alice.expect(r"^:bob_with_a_long_nick!\S+ PRIVMSG #test :hi alice$")


async def test_ngircd_kill_and_restart_same_port(
    make_ngircd: MakeNgircd, irc_client: ConnectIrc
) -> None:
    server = make_ngircd()
    port = server.port
    alice = await irc_client(server, "alice")
    server.kill()
    with pytest.raises(TimeoutError, match="connection closed"):
        await alice.expect("never sent", timeout=5)
    server.start()
    assert server.port == port
    again = await irc_client(server, "alice")
    await again.join("#test")


@pytest.mark.postgres
async def test_postgres_select_1(postgres_url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(postgres_url)
    try:
        assert await conn.fetchval("SELECT 1") == 1
        assert await conn.fetchval("SELECT current_user") == "portway"
        assert await conn.fetchval("SELECT current_database()") == "portway"
    finally:
        await conn.close()
