"""Error conditions read from a component's stanzas, and resources found gone by them."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from types import SimpleNamespace

from slixmpp import JID, Iq, Message
from slixmpp.exceptions import IqError, IqTimeout

from component.muc import MucRouter
from component.room_gone import error_condition, is_gone

COMPONENT_NS = "jabber:component:accept"


def stanza(kind: type, xml: str) -> object:
    return kind(xml=ET.fromstring(xml))


def test_condition_of_a_component_stanza_error() -> None:
    bounce = stanza(
        Iq,
        f'<iq xmlns="{COMPONENT_NS}" type="error" id="1" from="a@example.org/laptop"'
        ' to="irc.example.org"><error type="cancel"><service-unavailable'
        ' xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/><text'
        ' xmlns="urn:ietf:params:xml:ns:xmpp-stanzas">gone</text></error></iq>',
    )
    assert error_condition(bounce) == "service-unavailable"
    assert is_gone(bounce)


def test_errors_that_do_not_mean_gone() -> None:
    refused = stanza(
        Message,
        f'<message xmlns="{COMPONENT_NS}" type="error"><error type="auth"><forbidden'
        ' xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></message>',
    )
    assert error_condition(refused) == "forbidden"
    assert not is_gone(refused)
    plain = stanza(Message, f'<message xmlns="{COMPONENT_NS}" type="chat"><body>x</body></message>')
    assert error_condition(plain) == ""
    assert not is_gone(plain)


class FakeRooms:
    """The room service, as far as a vanished resource is concerned."""

    def __init__(self) -> None:
        self.left: list[tuple[str, str]] = []

    def parse_room(self, localpart: str) -> str | None:
        return localpart if localpart.startswith("#") else None

    async def leave_room(self, full_jid: str, room: str, status: str = "") -> None:
        self.left.append((full_jid, room))


class FakeDisco:
    """disco#info as the XMPP server answers for each resource after a restart."""

    def __init__(self, answers: dict[str, str]) -> None:
        self.answers = answers

    async def get_info(self, *, jid: str, **_kwargs: object) -> None:
        answer = self.answers[jid]
        if answer == "timeout":
            raise IqTimeout(Iq())
        if answer != "result":
            raise IqError(
                stanza(
                    Iq,
                    f'<iq xmlns="{COMPONENT_NS}" type="error" from="{jid}"><error type="cancel">'
                    f'<{answer} xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></iq>',
                )
            )


def router(answers: dict[str, str] | None = None) -> tuple[MucRouter, FakeRooms]:
    rooms = FakeRooms()
    component = SimpleNamespace(
        boundjid=JID("irc.example.org"), plugin={"xep_0030": FakeDisco(answers or {})}
    )
    return MucRouter(component, rooms), rooms  # type: ignore[arg-type]


async def test_a_bounced_room_message_takes_the_resource_out() -> None:
    muc, rooms = router()
    muc.joined[("a@example.org/laptop", "#test")] = "alice"
    muc.joined[("a@example.org/phone", "#test")] = "alice"

    def bounce(condition: str, sender: str) -> object:
        return stanza(
            Message,
            f'<message xmlns="{COMPONENT_NS}" type="error" from="{sender}"'
            ' to="#test@irc.example.org/bob"><error type="cancel">'
            f'<{condition} xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></message>',
        )

    await muc._on_bounce(bounce("forbidden", "a@example.org/phone"))  # type: ignore[arg-type]
    await muc._on_bounce(bounce("service-unavailable", "a@example.org/laptop"))  # type: ignore[arg-type]
    assert rooms.left == [("a@example.org/laptop", "#test")]
    assert list(muc.joined) == [("a@example.org/phone", "#test")]


async def test_after_a_reattach_only_resources_the_server_says_are_gone_leave() -> None:
    muc, rooms = router(
        {
            "a@example.org/dead": "service-unavailable",
            "a@example.org/alive": "result",
            "a@example.org/slow": "timeout",
            "b@example.org/odd": "forbidden",
        }
    )
    for jid in ("a@example.org/dead", "a@example.org/alive", "a@example.org/slow"):
        muc.joined[(jid, "#one")] = "a"
    muc.joined[("a@example.org/dead", "#two")] = "a"
    muc.joined[("b@example.org/odd", "#one")] = "b"
    await muc.check_occupants()
    assert sorted(rooms.left) == [("a@example.org/dead", "#one"), ("a@example.org/dead", "#two")]
    assert sorted(muc.joined) == [
        ("a@example.org/alive", "#one"),
        ("a@example.org/slow", "#one"),
        ("b@example.org/odd", "#one"),
    ]
