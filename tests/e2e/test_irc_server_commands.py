"""Per-server settings as an ad-hoc command on the server's own JID (XEP-0050).

``irc.localhost@irc.example.org`` lists the settings command in disco and runs it for that
server in one step; the gateway's JID keeps its variant, which asks for the server first.
The override is stored, shown pre-filled next time, and used at the next connection.
"""

from __future__ import annotations

import pytest
from slixmpp import Iq
from support.xmpp_client import XmppClient
from test_irc_rooms import GW, World
from test_irc_rooms import world as world  # the fixture, shared

pytestmark = pytest.mark.e2e

NS_COMMANDS = "http://jabber.org/protocol/commands"
NODE = "irc-server-settings"
SERVER_JID = f"irc.localhost@{GW}"


async def execute(client: XmppClient, jid: str) -> Iq:
    return await client.iq(
        f"<iq type='set' to='{jid}'><command xmlns='{NS_COMMANDS}' node='{NODE}' "
        "action='execute'/></iq>"
    )


async def submit(
    client: XmppClient, jid: str, session: str, values: dict[str, str], action: str = "complete"
) -> Iq:
    """Submit the form; "complete" ends the session, "next" lets it go on to another form."""
    fields = "".join(f"<field var='{k}'><value>{v}</value></field>" for k, v in values.items())
    return await client.iq(
        f"<iq type='set' to='{jid}'><command xmlns='{NS_COMMANDS}' node='{NODE}' "
        f"sessionid='{session}' action='{action}'>"
        f"<x xmlns='jabber:x:data' type='submit'>{fields}</x></command></iq>"
    )


def form_fields(reply: Iq) -> dict[str, object]:
    form = reply["command"]["form"]
    return {var: field["value"] for var, field in form.get_fields().items()}


async def test_settings_command_on_the_server_jid(world: World) -> None:
    alice = world.alice

    items = await alice.iq(
        f"<iq type='get' to='{SERVER_JID}'>"
        f"<query xmlns='http://jabber.org/protocol/disco#items' node='{NS_COMMANDS}'/></iq>"
    )
    listed = {(str(i[0]), i[1], i[2]) for i in items["disco_items"]["items"]}
    assert listed == {(SERVER_JID, NODE, "Settings for irc.localhost")}
    info = await alice.iq(
        f"<iq type='get' to='{SERVER_JID}'>"
        "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>"
    )
    assert NS_COMMANDS in info["disco_info"]["features"]

    # One step: the form is for irc.localhost, and asks for no server.
    first = await execute(alice, SERVER_JID)
    assert first["type"] == "result", first
    assert first["command"]["status"] == "executing"
    assert first["command"]["form"]["title"] == "Settings for irc.localhost"
    fields = form_fields(first)
    assert "server" not in fields and fields["nick"] == ""
    done = await submit(alice, SERVER_JID, first["command"]["sessionid"], {"nick": "alicia"})
    assert done["type"] == "result", done
    assert done["command"]["status"] == "completed"
    assert "irc.localhost" in done["command"]["notes"][0][1]

    # Stored: shown next time, and used by the next connection.
    again = await execute(alice, SERVER_JID)
    assert form_fields(again)["nick"] == "alicia"
    bob = await world.connect_irc(world.ngircd, "bob")
    alice.send_message(f"bob%irc.localhost@{GW}", "hello as alicia")
    await bob.expect(r"^:alicia!\S+ PRIVMSG bob :hello as alicia$", timeout=15)

    # The gateway's own JID keeps its variant: it asks for the server first.
    gateway_first = await execute(alice, GW)
    assert gateway_first["type"] == "result", gateway_first
    assert set(form_fields(gateway_first)) == {"server"}
    second = await submit(
        alice, GW, gateway_first["command"]["sessionid"], {"server": "irc.localhost"}, "next"
    )
    assert second["command"]["status"] == "executing"
    assert form_fields(second)["nick"] == "alicia"


async def test_bad_uses_of_the_server_command(world: World) -> None:
    alice = world.alice

    # Not a server this gateway serves, a nick, a channel: no such command there.
    for jid in (f"unknown.example@{GW}", f"bob%irc.localhost@{GW}", f"#test%irc.localhost@{GW}"):
        reply = await execute(alice, jid)
        assert reply["type"] == "error", jid
        assert reply["error"]["condition"] == "item-not-found", jid
    items = await alice.iq(
        f"<iq type='get' to='unknown.example@{GW}'>"
        f"<query xmlns='http://jabber.org/protocol/disco#items' node='{NS_COMMANDS}'/></iq>"
    )
    assert items["type"] == "result" and not items["disco_items"]["items"]

    # A bad value is refused, and nothing is stored.
    first = await execute(alice, SERVER_JID)
    refused = await submit(alice, SERVER_JID, first["command"]["sessionid"], {"nick": "bad nick"})
    assert refused["type"] == "error"
    assert refused["error"]["condition"] == "jid-malformed"
    assert "bad nick" in refused["error"]["text"]
    first = await execute(alice, SERVER_JID)
    refused = await submit(alice, SERVER_JID, first["command"]["sessionid"], {"encoding": "utf-16"})
    assert refused["error"]["condition"] == "bad-request"
    assert "ASCII" in refused["error"]["text"]
    assert form_fields(await execute(alice, SERVER_JID))["nick"] == ""
