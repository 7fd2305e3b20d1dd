"""A server's channel list as disco#items, paged with RSM, fetched once per browsing session."""

from __future__ import annotations

import asyncio

import pytest
from slixmpp.xmlstream import StanzaBase
from support.room_fakes import GW, FakeComponent, FakeRooms, incoming, make_router

from component import room_directory
from component.muc import MucRouter
from component.room_directory import MAX_ITEMS, PageRequest, item_name, page
from transports.base import GatewayError
from transports.rooms import RoomListing

USER = "alice@example.org"
SERVER = "irc.example.net"
ITEMS = "{http://jabber.org/protocol/disco#items}"
RSM = "{http://jabber.org/protocol/rsm}"


def rooms_of(count: int) -> list[RoomListing]:
    return [RoomListing(f"#c{n:05}%{SERVER}", n, "") for n in range(count)]


async def browse(
    router: MucRouter, component: FakeComponent, rsm: str = "", to: str = f"{SERVER}@{GW}"
) -> StanzaBase:
    stanza = incoming(
        component,
        f"<iq type='get' id='l1' from='{USER}/laptop' to='{to}'>"
        f"<query xmlns='http://jabber.org/protocol/disco#items'>{rsm}</query></iq>",
    )
    assert router._answer_query(stanza) is None
    await asyncio.gather(*router._tasks)
    [reply] = component.take()
    return reply


def jids(reply: StanzaBase) -> list[str]:
    return [item.get("jid", "") for item in reply.xml.iter(f"{ITEMS}item")]


def rsm_set(reply: StanzaBase) -> dict[str, str]:
    found = reply.xml.find(f"{ITEMS}query/{RSM}set")
    assert found is not None
    values = {child.tag.rpartition("}")[2]: child.text or "" for child in found}
    first = found.find(f"{RSM}first")
    if first is not None:
        values["first_index"] = first.get("index", "")
    return values


def setup(count: int) -> tuple[MucRouter, FakeRooms, FakeComponent]:
    router, rooms, component = make_router()
    rooms.listing = rooms_of(count)
    return router, rooms, component


def test_names_say_users_and_topic() -> None:
    assert item_name(RoomListing(f"#a%{SERVER}", 12, "")) == "#a (12 users)"
    assert item_name(RoomListing(f"#a%{SERVER}", 1, "hello")) == "#a (1 user): hello"
    assert item_name(RoomListing(f"#a%{SERVER}")) == "#a"


def test_pages_follow_xep_0059() -> None:
    ids = [str(n) for n in range(10)]
    assert page(ids, PageRequest(max=3)) == room_directory.Page(0, 3)
    assert page(ids, PageRequest(max=3, after="2")) == room_directory.Page(3, 6)
    assert page(ids, PageRequest(max=3, before="")) == room_directory.Page(7, 10)
    assert page(ids, PageRequest(max=3, before="5")) == room_directory.Page(2, 5)
    assert page(ids, PageRequest(max=3, index=8)) == room_directory.Page(8, 10)
    assert page(ids, PageRequest(max=0)) == room_directory.Page(0, 0)
    assert page(ids, PageRequest(max=3, after="9")) == room_directory.Page(10, 10)
    with pytest.raises(GatewayError) as missing:
        page(ids, PageRequest(after="nope"))
    assert missing.value.condition == "item-not-found"
    many = [str(n) for n in range(MAX_ITEMS * 2)]
    assert page(many, PageRequest()) == room_directory.Page(0, MAX_ITEMS)
    assert page(many, PageRequest(max=MAX_ITEMS * 2)) == room_directory.Page(0, MAX_ITEMS)


async def test_paging_through_the_list_fetches_it_once() -> None:
    router, rooms, component = setup(25)
    first = await browse(
        router, component, "<set xmlns='http://jabber.org/protocol/rsm'><max>10</max></set>"
    )
    assert jids(first) == [f"#c{n:05}%{SERVER}@{GW}" for n in range(10)]
    names = [item.get("name") for item in first.xml.iter(f"{ITEMS}item")]
    assert names[3] == "#c00003 (3 users)"
    assert rsm_set(first) == {
        "first": f"#c00000%{SERVER}@{GW}",
        "first_index": "0",
        "last": f"#c00009%{SERVER}@{GW}",
        "count": "25",
    }
    after = rsm_set(first)["last"]
    second = await browse(
        router,
        component,
        f"<set xmlns='http://jabber.org/protocol/rsm'><max>10</max><after>{after}</after></set>",
    )
    assert jids(second)[0] == f"#c00010%{SERVER}@{GW}" and rsm_set(second)["first_index"] == "10"
    third = await browse(
        router,
        component,
        "<set xmlns='http://jabber.org/protocol/rsm'><max>10</max><index>20</index></set>",
    )
    assert len(jids(third)) == 5
    assert rooms.called("list_rooms") == [(USER, SERVER)]  # one fetch for three pages
    # A new browsing session (no place in the list) fetches again.
    await browse(router, component)
    assert len(rooms.called("list_rooms")) == 2


async def test_count_only_unknown_after_and_refusals() -> None:
    router, rooms, component = setup(7)
    counted = await browse(
        router, component, "<set xmlns='http://jabber.org/protocol/rsm'><max>0</max></set>"
    )
    assert jids(counted) == [] and rsm_set(counted) == {"count": "7"}
    lost = await browse(
        router, component, "<set xmlns='http://jabber.org/protocol/rsm'><after>gone@x</after></set>"
    )
    assert lost["type"] == "error"
    assert lost.xml.find(".//{urn:ietf:params:xml:ns:xmpp-stanzas}item-not-found") is not None
    bad = await browse(
        router, component, "<set xmlns='http://jabber.org/protocol/rsm'><max>x</max></set>"
    )
    assert bad.xml.find(".//{urn:ietf:params:xml:ns:xmpp-stanzas}bad-request") is not None
    rooms.fail["list_rooms"] = GatewayError(
        "not connected to irc.example.net", "recipient-unavailable"
    )
    failed = await browse(router, component)
    assert (
        failed.xml.find(".//{urn:ietf:params:xml:ns:xmpp-stanzas}recipient-unavailable") is not None
    )


async def test_nicks_rooms_and_nodes_are_not_directories() -> None:
    router, _rooms, component = setup(3)
    for to, node in (
        (f"bob%{SERVER}@{GW}", ""),
        (f"#c00001%{SERVER}@{GW}", ""),
        (f"{SERVER}@{GW}", " node='http://jabber.org/protocol/commands'"),
    ):
        stanza = incoming(
            component,
            f"<iq type='get' id='l1' from='{USER}/laptop' to='{to}'>"
            f"<query xmlns='http://jabber.org/protocol/disco#items'{node}/></iq>",
        )
        if to.startswith("#"):
            assert router._answer_query(stanza) is None  # the room's own (empty) items
            component.take()
        else:
            assert router._answer_query(stanza) is stanza, to


async def test_the_cache_is_bounded_in_keys() -> None:
    router, rooms, _component = setup(2)
    directory = router.directory
    for n in range(room_directory.CACHE_KEYS + 10):
        await directory.listings(f"user{n}@example.org", SERVER, fresh=True)
    assert len(directory._lists) == room_directory.CACHE_KEYS
    assert len(rooms.called("list_rooms")) == room_directory.CACHE_KEYS + 10
