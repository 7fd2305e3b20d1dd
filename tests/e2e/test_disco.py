"""Service discovery (issue 13): each component says what it does, and only that.

slixmpp's plugins come in as dependencies and advertise their own protocols (iq-based file
transfer, pubsub, PEP nicknames, forwarding); a client that trusts disco would try them.
Each feature listed here is one the gateway handles (see the comments).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from support.fixture_types import ConnectXmpp, MakeProsody
from support.gateway import GatewayProcess
from test_core import SECRETS, USERS, settings

from component.message_refs import FEATURES as MESSAGE_REF_FEATURES

pytestmark = pytest.mark.e2e

DISCO_INFO = "http://jabber.org/protocol/disco#info"
DISCO_ITEMS = "http://jabber.org/protocol/disco#items"

#: What every component handles
EVERY_COMPONENT = {
    DISCO_INFO,
    "http://jabber.org/protocol/commands",  # ad-hoc commands (settings, registration, admin)
    "jabber:x:data",  # the forms of registration and of commands
    "http://jabber.org/protocol/nick",  # the contact's name in subscription requests
    "jabber:iq:gateway",  # XEP-0100 address prompt
    "jabber:iq:register",  # XEP-0077 registration
    "jabber:iq:version",
    "urn:xmpp:ping",
    "urn:xmpp:receipts",  # receipts when the other network confirms delivery
    "urn:xmpp:sid:0",  # stanza and origin ids
    "jabber:x:oob",  # file URLs in messages, both ways
    "jid\\20escaping",
    "http://jabber.org/protocol/caps",  # its presences carry <c/>, answered at the caps node
    *MESSAGE_REF_FEATURES,
}
#: What the IRC component adds: it is a MUC service, with room lists and archives
ROOMS = {
    "http://jabber.org/protocol/muc",
    "jabber:x:conference",  # direct invitations
    "urn:xmpp:mam:2",  # room archives
    "http://jabber.org/protocol/rsm",  # paged room lists and archive queries
}
NOT_HANDLED = {
    "jabber:iq:oob",
    "http://jabber.org/protocol/shim",
    "http://jabber.org/protocol/shim#SubID",
    "http://jabber.org/protocol/nick+notify",
    "urn:xmpp:forward:0",
}


@pytest.fixture
async def world(tmp_path: Path, make_prosody: MakeProsody, xmpp_client: ConnectXmpp) -> Any:
    prosody = make_prosody(components=SECRETS, users=USERS)
    gateway = GatewayProcess(tmp_path / "gateway", settings(prosody))
    await gateway.astart()
    alice = await xmpp_client("alice@example.org", "alice-pw", prosody)
    yield alice
    gateway.stop()


async def test_each_component_lists_only_what_it_handles(world: Any) -> None:
    alice = world
    for jid in SECRETS:
        info = await alice.iq(f"<iq type='get' to='{jid}'><query xmlns='{DISCO_INFO}'/></iq>")
        assert info["type"] == "result", info
        features = set(info["disco_info"]["features"])
        assert not features & NOT_HANDLED, (jid, features & NOT_HANDLED)
        expected = EVERY_COMPONENT | (ROOMS if jid.startswith("irc.") else set())
        assert features == expected, (jid, features ^ expected)
        names = {identity[3] for identity in info["disco_info"]["identities"]}
        assert all(name and name.startswith("Portway ") for name in names), (jid, names)


async def test_the_gateways_items_are_empty_on_purpose(world: Any) -> None:
    """Nothing to list on the gateway itself: contacts are addresses on open networks (phone
    numbers, mail addresses, IRC nicks) that no directory holds; an IRC server's rooms are
    listed on the server's JID, and a user's hooks by the "Your hooks" command. An empty
    result, not an error, so that clients browsing the server's services go on."""
    alice = world
    for jid in SECRETS:
        items = await alice.iq(f"<iq type='get' to='{jid}'><query xmlns='{DISCO_ITEMS}'/></iq>")
        assert items["type"] == "result", items
        assert not items["disco_items"]["items"], (jid, items)


async def test_an_irc_servers_jid_has_a_named_identity(world: Any) -> None:
    alice = world
    server = "irc.localhost@irc.example.org"
    info = await alice.iq(f"<iq type='get' to='{server}'><query xmlns='{DISCO_INFO}'/></iq>")
    assert info["type"] == "result", info
    identities = info["disco_info"]["identities"]
    assert len(identities) == 1, identities
    category, kind, _lang, name = next(iter(identities))
    assert (category, kind) == ("conference", "irc"), identities
    assert name == "IRC server irc.localhost over Portway", identities
