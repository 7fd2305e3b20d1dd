"""IQs on rooms, occupants and servers' JIDs: self-ping, version, muc#admin, disco, errors."""

from __future__ import annotations

import asyncio

from slixmpp import JID, Iq
from slixmpp.xmlstream import StanzaBase
from support.room_fakes import COMPONENT_NS, GW, FakeComponent, incoming, make_router

from component.muc import MucRouter
from component.stanzas import errors_in_stream_namespace
from transports.base import GatewayError
from transports.rooms import Occupant, OccupantPresence

USER = "alice@example.org"
ROOM = "#test%irc.example.net"
STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"


async def ask(router: MucRouter, component: FakeComponent, xml: str) -> list[StanzaBase]:
    """Send an IQ through the router's filter; the stanzas sent in answer."""
    stanza = incoming(component, xml)
    assert router._answer_query(stanza) is None, "not answered by the room filters"
    await asyncio.gather(*router._tasks)
    return component.take()


def condition(stanza: StanzaBase) -> str:
    for child in stanza.xml:
        if child.tag.endswith("}error"):
            for cond in child:
                if cond.tag.startswith(f"{{{STANZAS}}}") and not cond.tag.endswith("}text"):
                    return cond.tag.rpartition("}")[2]
    return ""


def ping(to: str, sender: str = f"{USER}/laptop") -> str:
    return f"<iq type='get' id='p1' from='{sender}' to='{to}'><ping xmlns='urn:xmpp:ping'/></iq>"


async def test_self_ping_answers_only_a_joined_resource() -> None:
    router, _rooms, component = make_router()
    router.joined[(f"{USER}/laptop", ROOM)] = "alice"
    [ok] = await ask(router, component, ping(f"{ROOM}@{GW}/alice"))
    assert ok["type"] == "result" and ok["id"] == "p1"
    [out] = await ask(router, component, ping(f"{ROOM}@{GW}/alice", f"{USER}/phone"))
    assert out["type"] == "error" and condition(out) == "not-acceptable"
    [other_room] = await ask(router, component, ping(f"#other%irc.example.net@{GW}/alice"))
    assert condition(other_room) == "not-acceptable"


async def test_a_ping_to_a_contact_or_the_gateway_is_left_to_the_ping_plugin() -> None:
    router, _rooms, component = make_router()
    for to in (GW, f"bob%irc.example.net@{GW}", f"{ROOM}@{GW}"):
        stanza = incoming(component, ping(to))
        assert router._answer_query(stanza) is stanza


def version(to: str) -> str:
    return (
        f"<iq type='get' id='v1' from='{USER}/laptop' to='{to}'>"
        "<query xmlns='jabber:iq:version'/></iq>"
    )


async def test_version_of_an_occupant_and_of_a_nick_asks_the_network() -> None:
    router, rooms, component = make_router()
    rooms.version = "irssi v1.4.3 - running on Linux"
    [reply] = await ask(router, component, version(f"{ROOM}@{GW}/bob"))
    assert reply["type"] == "result"
    query = reply.xml.find("{jabber:iq:version}query")
    assert query is not None
    # As biboumi: the whole CTCP reply is the name.
    assert query.findtext("{jabber:iq:version}name") == "irssi v1.4.3 - running on Linux"
    assert query.findtext("{jabber:iq:version}version") == ""
    [_contact] = await ask(router, component, version(f"bob%irc.example.net@{GW}/~bob@host"))
    assert rooms.called("occupant_version") == [
        (f"{USER}/laptop", ROOM, "bob"),
        (f"{USER}/laptop", None, "bob%irc.example.net"),
    ]


async def test_version_timeout_is_the_iq_error_and_the_gateway_keeps_its_own() -> None:
    router, rooms, component = make_router()
    rooms.fail["occupant_version"] = GatewayError("bob did not answer", "remote-server-timeout")
    [reply] = await ask(router, component, version(f"{ROOM}@{GW}/bob"))
    assert reply["type"] == "error" and condition(reply) == "remote-server-timeout"
    [room] = await ask(router, component, version(f"{ROOM}@{GW}"))
    assert condition(room) == "service-unavailable"
    [server] = await ask(router, component, version(f"irc.example.net@{GW}"))
    assert condition(server) == "service-unavailable"
    assert len(rooms.called("occupant_version")) == 1
    own = incoming(component, version(GW))
    assert router._answer_query(own) is own  # slixmpp's version plugin: Portway's version


def admin(items: str, iq_type: str = "set") -> str:
    return (
        f"<iq type='{iq_type}' id='a1' from='{USER}/laptop' to='{ROOM}@{GW}'>"
        f"<query xmlns='http://jabber.org/protocol/muc#admin'>{items}</query></iq>"
    )


async def test_muc_admin_items_become_moderation_calls() -> None:
    router, rooms, component = make_router()
    [ok] = await ask(
        router, component, admin("<item nick='bob' role='none'><reason>behave</reason></item>")
    )
    assert ok["type"] == "result" and ok["id"] == "a1"
    await ask(router, component, admin("<item nick='bob' role='participant'/>"))
    await ask(router, component, admin("<item nick='bob' role='visitor'/>"))
    await ask(router, component, admin("<item nick='bob' role='moderator'/>"))
    await ask(
        router,
        component,
        admin(f"<item jid='bob%irc.example.net@{GW}' affiliation='outcast'/>"),
    )
    moderated = [(args[2], kwargs) for name, args, kwargs in rooms.calls if name == "moderate"]
    assert moderated == [
        ("bob", {"role": "none", "affiliation": None, "reason": "behave"}),
        ("bob", {"role": "participant", "affiliation": None, "reason": ""}),
        ("bob", {"role": "visitor", "affiliation": None, "reason": ""}),
        ("bob", {"role": "moderator", "affiliation": None, "reason": ""}),
        ("bob", {"role": None, "affiliation": "outcast", "reason": ""}),
    ]


async def test_muc_admin_refusals_and_bad_items_are_iq_errors() -> None:
    router, rooms, component = make_router()
    rooms.fail["moderate"] = GatewayError("you are not a channel operator", "not-allowed")
    [refused] = await ask(router, component, admin("<item nick='bob' role='none'/>"))
    assert refused["type"] == "error" and condition(refused) == "not-allowed"
    for bad in ("<item nick='bob' role='king'/>", "<item role='none'/>", "<item nick='bob'/>", ""):
        [reply] = await ask(router, component, admin(bad))
        assert condition(reply) == "bad-request", bad
    [listing] = await ask(router, component, admin("<item role='moderator'/>", "get"))
    assert condition(listing) == "feature-not-implemented"
    assert len(rooms.called("moderate")) == 1


async def test_room_disco_lists_ping_version_commands_and_answers_muc_traffic() -> None:
    router, _rooms, component = make_router()
    [info] = await ask(
        router,
        component,
        f"<iq type='get' id='d1' from='{USER}/laptop' to='{ROOM}@{GW}'>"
        "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
    )
    features = {
        f.get("var") for f in info.xml.iter("{http://jabber.org/protocol/disco#info}feature")
    }
    assert {"urn:xmpp:ping", "jabber:iq:version", "http://jabber.org/protocol/commands"} <= features
    [traffic] = await ask(
        router,
        component,
        f"<iq type='get' id='d2' from='{USER}/laptop' to='{ROOM}@{GW}'>"
        "<query xmlns='http://jabber.org/protocol/disco#info'"
        " node='http://jabber.org/protocol/muc#traffic'/></iq>",
    )
    query = traffic.xml.find("{http://jabber.org/protocol/disco#info}query")
    assert traffic["type"] == "result" and query is not None
    assert query.get("node") == "http://jabber.org/protocol/muc#traffic" and list(query) == []


async def test_the_component_is_a_gateway_and_a_conference_service() -> None:
    _router, _rooms, component = make_router()
    component.plugin["xep_0030"].add_identity(category="gateway", itype="irc", jid=JID(GW))
    info = await component.plugin["xep_0030"].get_info(jid=JID(GW), local=True)
    identities = {(cat, kind) for cat, kind, *_ in info["identities"]}
    assert {("gateway", "irc"), ("conference", "irc")} <= identities


def test_errors_go_out_in_the_stream_namespace() -> None:
    component = FakeComponent()
    iq = component.make_iq_get(ito=f"{USER}/laptop", ifrom=GW)
    reply = iq.reply(clear=True)
    reply["type"] = "error"
    reply["error"]["condition"] = "not-acceptable"
    assert "jabber:client" in str(reply)  # what slixmpp does on its own
    text = str(errors_in_stream_namespace(reply))
    assert "jabber:client" not in text
    assert reply.xml.find(f"{{{COMPONENT_NS}}}error") is not None


def test_a_client_stanza_keeps_its_error_namespace() -> None:
    iq = Iq()
    iq["type"] = "error"
    iq["error"]["condition"] = "forbidden"
    errors_in_stream_namespace(iq)
    assert iq.xml.find("{jabber:client}error") is not None


async def room_info(router: MucRouter, component: FakeComponent) -> StanzaBase:
    [info] = await ask(
        router,
        component,
        f"<iq type='get' id='d1' from='{USER}/laptop' to='{ROOM}@{GW}'>"
        "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
    )
    return info


def occupants_field(info: StanzaBase) -> str | None:
    for field in info.xml.iter("{jabber:x:data}field"):
        if field.get("var") == "muc#roominfo_occupants":
            return field.findtext("{jabber:x:data}value")
    return None


async def test_room_disco_names_the_room_and_counts_occupants_once_joined() -> None:
    router, _rooms, component = make_router()
    info = await room_info(router, component)
    identity = info.xml.find(".//{http://jabber.org/protocol/disco#info}identity")
    assert identity is not None and identity.get("name") == "#test on irc.example.net"
    assert occupants_field(info) is None  # not in the room: no count

    def presence(nick: str, **kwargs: object) -> None:
        router.render(
            OccupantPresence(USER, ROOM, ("laptop",), Occupant(nick), **kwargs)  # type: ignore[arg-type]
        )
        component.take()

    presence("bob")
    presence("carol")
    router.joined[(f"{USER}/laptop", ROOM)] = "alice"
    presence("alice", is_self=True)
    assert occupants_field(await room_info(router, component)) == "3"
    presence("carol", available=False, new_nick="caroline")  # a nick change: still three
    presence("bob", available=False)
    assert occupants_field(await room_info(router, component)) == "2"
    presence("alice", available=False, is_self=True)  # the user's last resource leaves
    assert occupants_field(await room_info(router, component)) is None


async def test_a_malformed_archive_query_is_an_iq_error_that_says_why() -> None:
    router, _rooms, component = make_router()
    [reply] = await ask(
        router,
        component,
        f"<iq type='set' id='m1' from='{USER}/laptop' to='{ROOM}@{GW}'>"
        "<query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data' type='submit'>"
        "<field var='start'><value>yesterday</value></field></x></query></iq>",
    )
    assert (reply["type"], reply["id"], str(reply["to"])) == ("error", "m1", f"{USER}/laptop")
    assert condition(reply) == "bad-request"
    assert reply["error"]["type"] == "modify"
    assert reply["error"]["text"] == "start and end must be XEP-0082 date-times"
    assert reply.xml.find("{urn:xmpp:mam:2}fin") is None
