"""Plain room posts skip slixmpp's handler matching (component/muc.py): that is only sound
while such a post matches no stanza handler but "IM" (which raises "message", the event the
component takes) and the MUC plugin's (whose events nobody listens to). Checked here on the
real component, with every plugin and handler it registers."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from slixmpp import Message

from component.config import Config
from component.host import Host
from component.metrics import Metrics
from component.room_posts import is_plain_room_post
from component.xmpp import GatewayComponent
from mappings.store import Store
from transports.irc.settings import IrcSettings
from transports.irc.transport import IrcTransport

GW = "irc.example.org"
ROOM = f"#chan%irc.example@{GW}"
NS = "jabber:component:accept"

PLAIN = (
    f"<message type='groupchat' to='{ROOM}' id='1'><body>hi</body></message>",
    f"<message type='groupchat' to='{ROOM}' id='2'><body xml:lang='en'>hi</body>"
    "<origin-id xmlns='urn:xmpp:sid:0' id='o2'/>"
    "<active xmlns='http://jabber.org/protocol/chatstates'/></message>",
)
NOT_PLAIN = (
    f"<message type='chat' to='{ROOM}' id='3'><body>hi</body></message>",
    f"<message to='{ROOM}' id='4'><body>hi</body></message>",
    f"<message type='groupchat' to='{ROOM}' id='5'><subject>topic</subject></message>",
    f"<message type='groupchat' to='{ROOM}' id='6'><body>hi</body><subject>t</subject></message>",
    f"<message type='groupchat' to='{ROOM}' id='7'><active"
    " xmlns='http://jabber.org/protocol/chatstates'/></message>",
    f"<message type='groupchat' to='{ROOM}' id='8'><body>hi</body>"
    "<request xmlns='urn:xmpp:receipts'/></message>",
    f"<message type='groupchat' to='{ROOM}' id='9'><body>hi</body>"
    "<x xmlns='http://jabber.org/protocol/muc#user'><invite to='bob@example.org'/></x></message>",
    f"<message type='groupchat' to='{ROOM}' id='10'><body>a</body><body xml:lang='de'>b</body>"
    "</message>",
    f"<message type='groupchat' to='{ROOM}' id='11'><body>fixed</body>"
    "<replace xmlns='urn:xmpp:message-correct:0' id='1'/></message>",
    f"<message type='error' to='{ROOM}' id='12'><body>hi</body></message>",
)


@pytest.fixture
async def component(tmp_path: Path) -> AsyncIterator[GatewayComponent]:
    config = Config.model_validate(
        {
            "database": f"sqlite:///{tmp_path / 'portway.db'}",
            "xmpp": {"host": "127.0.0.1", "port": 5347},
            "allowed_domains": ["example.org"],
            "transports": {"irc": {"jid": GW, "secret": "s3cret"}},
        }
    )
    store = await Store.open(config.database)
    try:
        host = Host("irc", GW, config, store, web.Application(), Metrics())
        transport = IrcTransport(IrcSettings.model_validate({"jid": GW, "secret": "s"}), host)
        yield GatewayComponent(transport, host, "s3cret")
    finally:
        await store.close()


def stanza(component: GatewayComponent, text: str) -> Message:
    wrapper = ET.fromstring(f"<stream xmlns='{NS}'>{text}</stream>")
    return Message(component, wrapper[0])


def matching(component: GatewayComponent, message: Message) -> set[str]:
    handlers: list[Any] = component._XMLStream__handlers  # type: ignore[attr-defined]
    return {handler.name for handler in handlers if handler.match(message)}


@pytest.mark.parametrize("text", PLAIN + NOT_PLAIN)
async def test_a_plain_post_matches_only_the_handlers_it_stands_for(
    component: GatewayComponent, text: str
) -> None:
    message = stanza(component, text)
    assert is_plain_room_post(message) == (text in PLAIN)
    if text in PLAIN:
        assert matching(component, message) == {"IM", "MUCMessage"}


async def test_nothing_listens_to_the_muc_plugins_message_events(
    component: GatewayComponent,
) -> None:
    events: dict[str, Any] = component._XMLStream__event_handlers  # type: ignore[attr-defined]
    assert component.event_handled("groupchat_message") == 0
    assert not [name for name in events if name.startswith("muc::") and events[name]]


async def test_a_plain_post_is_raised_as_the_message_event_and_goes_no_further(
    component: GatewayComponent, monkeypatch: pytest.MonkeyPatch
) -> None:
    raised: list[tuple[str, Any]] = []
    monkeypatch.setattr(component, "event", lambda name, data=None: raised.append((name, data)))
    message = stanza(component, PLAIN[1])
    assert component.muc is not None
    assert component.muc._answer_query(message) is None
    assert raised == [("message", message)]
    other = stanza(component, NOT_PLAIN[0])
    assert component.muc._answer_query(other) is other and len(raised) == 1
