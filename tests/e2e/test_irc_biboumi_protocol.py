"""biboumi's end-to-end scenarios on discovery, lists, history, pings and protocol details.

Ported from louiz/biboumi tests/end_to_end/scenarios/ with only the domains changed (see
test_irc_biboumi_scenarios.py for the room scenarios and tests/support/scenario.py for the
harness). Where biboumi's check is implicit in its harness (its `expect_stanza` takes *the
next* stanza, so "no history" is "the subject comes right after the self-presence"), the
port says it explicitly.
"""

# Stanzas and XPaths are biboumi's, one per line as in its scenarios, to compare them side by side.
# ruff: noqa: E501

from __future__ import annotations

import asyncio
import datetime
import math
import re
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from support.fixture_types import ConnectIrc, ConnectXmpp, MakeNgircd, MakeProsody
from support.irc_client import RawIrcClient
from support.scenario import Scenario, Stack, all_match, running_stack, text_at

pytestmark = pytest.mark.e2e

JOIN = "<presence from='{jid_one}/{resource_one}' to='#foo%{irc_server_one}/{nick_one}'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
STANZA_TAG_IN_CLIENT_NS = re.compile(
    r"<(message|presence|iq)\b[^>]*\bxmlns=['\"]jabber:client['\"]"
)


@pytest.fixture
async def recorded(
    tmp_path: Path,
    make_prosody: MakeProsody,
    make_ngircd: MakeNgircd,
    xmpp_client: ConnectXmpp,
    irc_client: ConnectIrc,
) -> AsyncIterator[Stack]:
    """The same stack, with the gateway's component stream and IRC lines recorded."""
    async with running_stack(
        tmp_path,
        make_prosody,
        make_ngircd,
        xmpp_client,
        irc_client,
        record_wire=True,
        record_irc=True,
    ) as s:
        yield s


async def join(sc: Scenario, chan: str = "#foo", history: str = "") -> None:
    """Join as {jid_one}/{resource_one}; wait for the self-presence and the subject."""
    sc.send(
        f"<presence from='{{jid_one}}/{{resource_one}}' to='{chan}%{{irc_server_one}}/{{nick_one}}'><x xmlns='http://jabber.org/protocol/muc'>{history}</x></presence>"
    )
    await sc.expect(
        f"/presence[@to='{{jid_one}}/{{resource_one}}'][@from='{chan}%{{irc_server_one}}/{{nick_one}}']/muc_user:x/muc_user:status[@code='110']"
    )
    await sc.expect(f"/message[@from='{chan}%{{irc_server_one}}'][@type='groupchat']/subject")


async def simple_channel_join(stack: Stack) -> Scenario:
    await stack.login("{jid_one}/{resource_one}")
    await join(stack.scenario)
    return stack.scenario


# -- discovery --------------------------------------------------------------------------------


async def test_self_disco_info(stack: Stack) -> None:
    """self_disco_info, plus issue 11's second identity: conference/irc and gateway/irc.

    biboumi checks its own name ('Biboumi XMPP-IRC gateway'); the name is Portway's here.
    """
    await stack.login("{jid_one}/{resource_one}")
    sc = stack.scenario
    sc.send(
        "<iq type='get' id='get1' from='{jid_one}/{resource_one}' to='{biboumi_host}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"
    )
    await sc.expect(
        "/iq[@type='result']/disco_info:query/disco_info:identity[@category='conference'][@type='irc']",
        "/iq/disco_info:query/disco_info:identity[@category='gateway'][@type='irc']",
        "/iq/disco_info:query/disco_info:feature[@var='jabber:iq:version']",
        "/iq/disco_info:query/disco_info:feature[@var='http://jabber.org/protocol/commands']",
        "/iq/disco_info:query/disco_info:feature[@var='urn:xmpp:ping']",
        "/iq/disco_info:query/disco_info:feature[@var='urn:xmpp:mam:2']",
    )


async def test_gateway_identities(stack: Stack) -> None:
    """Issue 11: the IRC component is both gateway/irc and conference/irc (MUC services)."""
    await stack.login("{jid_one}/{resource_one}")
    sc = stack.scenario
    sc.send(
        "<iq type='get' id='get2' from='{jid_one}/{resource_one}' to='{biboumi_host}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"
    )
    await sc.expect(
        "/iq[@id='get2'][@type='result']/disco_info:query/disco_info:identity[@category='conference'][@type='irc']",
        "/iq/disco_info:query/disco_info:identity[@category='gateway'][@type='irc']",
        "/iq/disco_info:query/disco_info:feature[@var='http://jabber.org/protocol/muc']",
    )


async def test_muc_disco_info(stack: Stack) -> None:
    """muc_disco_info: identity, ping/version/commands/MAM features; occupants once joined."""
    await stack.login("{jid_one}/{resource_one}")
    sc = stack.scenario
    sc.send(
        "<iq from='{jid_one}/{resource_one}' to='#foo%{irc_server_one}' id='1' type='get'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"
    )
    info = await sc.expect(
        "/iq[@from='#foo%{irc_server_one}'][@to='{jid_one}/{resource_one}'][@type='result']/disco_info:query",
        "/iq[@type='result']/disco_info:query/disco_info:identity[@category='conference'][@type='irc']",
        "/iq/disco_info:query/disco_info:feature[@var='jabber:iq:version']",
        "/iq/disco_info:query/disco_info:feature[@var='http://jabber.org/protocol/commands']",
        "/iq/disco_info:query/disco_info:feature[@var='urn:xmpp:ping']",
        "/iq/disco_info:query/disco_info:feature[@var='urn:xmpp:mam:2']",
        "/iq/disco_info:query/disco_info:feature[@var='muc_nonanonymous']",
        "/iq/disco_info:query/disco_info:feature[@var='urn:xmpp:sid:0']",
        "!/iq/disco_info:query/dataform:x/dataform:field[@var='muc#roominfo_occupants']",
    )
    # biboumi names the room after its channel and server; checked on its own, so that a
    # missing feature above is not hidden behind a name.
    assert all_match(
        info.xml,
        [
            sc.format(
                "/iq/disco_info:query/disco_info:identity[@category='conference'][@type='irc'][@name='#foo on {irc_host_one}']"
            )
        ],
    ), info
    await join(sc)
    sc.send(
        "<iq from='{jid_one}/{resource_one}' to='#foo%{irc_server_one}' id='2' type='get'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"
    )
    await sc.expect(
        "/iq[@from='#foo%{irc_server_one}'][@to='{jid_one}/{resource_one}'][@type='result']/disco_info:query",
        "/iq/disco_info:query/dataform:x/dataform:field[@var='muc#roominfo_occupants']/dataform:value[text()='1']",
        "/iq/disco_info:query/dataform:x/dataform:field[@var='FORM_TYPE'][@type='hidden']/dataform:value[text()='http://jabber.org/protocol/muc#roominfo']",
    )


async def test_muc_traffic_info(stack: Stack) -> None:
    """muc_traffic_info: the muc#traffic node is answered, with its node."""
    await stack.login("{jid_one}/{resource_one}")
    sc = stack.scenario
    sc.send(
        "<iq from='{jid_one}/{resource_one}' to='#foo%{irc_server_one}' id='1' type='get'><query xmlns='http://jabber.org/protocol/disco#info' node='http://jabber.org/protocol/muc#traffic'/></iq>"
    )
    await sc.expect(
        "/iq[@from='#foo%{irc_server_one}'][@to='{jid_one}/{resource_one}'][@type='result']/disco_info:query[@node='http://jabber.org/protocol/muc#traffic']"
    )


# -- channel list -----------------------------------------------------------------------------


#: ngIRCd always has `&SERVER` (its server-messages channel), which oragono, biboumi's
#: server, has not: the list has one channel more than the three joined ones.
LISTED = 4


async def three_channels(stack: Stack) -> Scenario:
    sc = await simple_channel_join(stack)
    await join(sc, "#bar")
    await join(sc, "#coucou")
    return sc


def _items(query_rsm: str) -> str:
    return f"<iq from='{{jid_one}}/{{resource_one}}' id='id1' to='{{irc_server_one}}' type='get'><query xmlns='http://jabber.org/protocol/disco#items'>{query_rsm}</query></iq>"


async def test_simple_channel_list(stack: Stack) -> None:
    """simple_channel_list: disco#items on the server JID lists its channels via LIST."""
    sc = await three_channels(stack)
    sc.send(_items(""))
    await sc.expect(
        "/iq[@type='result']/disco_items:query",
        f"/iq/disco_items:query/rsm:set/rsm:count[text()='{LISTED}']",
        "/iq/disco_items:query/rsm:set/rsm:first",
        "/iq/disco_items:query/rsm:set/rsm:last",
        "/iq/disco_items:query/disco_items:item[@jid='#foo%{irc_server_one}']",
        "/iq/disco_items:query/disco_items:item[@jid='#bar%{irc_server_one}']",
        "/iq/disco_items:query/disco_items:item[@jid='#coucou%{irc_server_one}']",
    )


async def test_channel_list_with_rsm(recorded: Stack) -> None:
    """channel_list_with_rsm: paging with max/after; one LIST per paging session."""
    stack = recorded
    sc = await three_channels(stack)
    rsm = "<set xmlns='http://jabber.org/protocol/rsm'>{}</set>"
    sc.send(_items(rsm.format("<max>0</max>")))
    await sc.expect("/iq[@type='result']/disco_items:query")
    sc.send(_items(rsm.format("<max>2</max>")))
    await sc.expect(
        "/iq[@type='result']/disco_items:query",
        "count(/iq/disco_items:query/disco_items:item[@jid])=2",
        "/iq/disco_items:query/rsm:set/rsm:first[@index='0']",
        "/iq/disco_items:query/rsm:set/rsm:last",
    )
    sc.send(_items(rsm.format("<max>12</max>")))
    whole = await sc.expect(
        "/iq[@type='result']/disco_items:query",
        f"count(/iq/disco_items:query/disco_items:item[@jid])={LISTED}",
        "/iq/disco_items:query/rsm:set/rsm:first[@index='0']",
        "/iq/disco_items:query/rsm:set/rsm:last",
        f"/iq/disco_items:query/rsm:set/rsm:count[text()='{LISTED}']",
    )
    assert stack.irc_recorder is not None
    lists_before_paging = _list_commands(stack.irc_recorder.text())
    previous = text_at(whole.xml, "/iq/disco_items:query/rsm:set/rsm:first")
    for index in range(1, LISTED):
        sc.send(_items(rsm.format(f"<after>{previous}</after><max>1</max>")))
        page = await sc.expect(
            "/iq[@type='result']/disco_items:query",
            "count(/iq/disco_items:query/disco_items:item)=1",
            f"/iq/disco_items:query/rsm:set/rsm:first[@index='{index}']",
            "/iq/disco_items:query/rsm:set/rsm:last",
            f"/iq/disco_items:query/rsm:set/rsm:count[text()='{LISTED}']",
        )
        previous = text_at(page.xml, "/iq/disco_items:query/rsm:set/rsm:first")
    sc.send(_items(rsm.format(f"<after>{previous}</after><max>1</max>")))
    await sc.expect(
        "/iq[@type='result']/disco_items:query",
        "count(/iq/disco_items:query/disco_items:item)=0",
        f"/iq/disco_items:query/rsm:set/rsm:count[text()='{LISTED}']",
    )
    # Pages after the first came from the list already fetched, not from new LISTs.
    assert _list_commands(stack.irc_recorder.text()) == lists_before_paging >= 1


def _list_commands(irc_wire: str) -> int:
    return sum(1 for line in irc_wire.splitlines() if re.match(r"^LIST\b", line))


# -- history ----------------------------------------------------------------------------------


async def test_join_history_limit(stack: Stack) -> None:
    """join_history_limit: maxchars=0, maxstanzas, since and seconds on join are honoured."""
    sc = await simple_channel_join(stack)

    async def say(text: str) -> None:
        sc.send(
            f"<message from='{{jid_one}}/{{resource_one}}' to='#foo%{{irc_server_one}}' type='groupchat'><body>{text}</body></message>"
        )
        await sc.expect(
            f"/message[@from='#foo%{{irc_server_one}}/{{nick_one}}'][@to='{{jid_one}}/{{resource_one}}'][@type='groupchat']/body[text()='{text}']"
        )

    await say("coucou")
    await say("coucou 2")
    first_timestamp = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=1)
    await asyncio.sleep(2)
    third_sent = time.time()
    await say("coucou 3")
    await say("coucou 4")
    # join some other channel, to stay connected to the server even after leaving #foo
    # (biboumi checks neither the room's spelling nor its subject's sender here)
    sc.send(
        "<presence from='{jid_one}/{resource_one}' to='#DUMMY%{irc_server_one}/{nick_one}'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
    )
    await sc.expect("/presence/muc_user:x/muc_user:status[@code='110']")
    await sc.expect("/message/subject")

    async def rejoin(history: str | Callable[[], str], expected: list[str]) -> None:
        sc.send(
            "<presence from='{jid_one}/{resource_one}' to='#foo%{irc_server_one}' type='unavailable' />"
        )
        await sc.expect("/presence[@type='unavailable'][@from='#foo%{irc_server_one}/{nick_one}']")
        await asyncio.sleep(0.2)
        sc.drop_all()
        limit = history if isinstance(history, str) else history()
        await join(sc, "#foo", limit)
        got = [
            r.stanza["body"]
            for r in sorted(sc.inbox, key=lambda r: r.order)
            if str(r.stanza["from"]) == sc.format("#foo%{irc_server_one}/{nick_one}")
            and r.stanza.name == "message"
            and r.stanza["body"]
        ]
        assert got == expected, f"history {limit}: got {got}"

    await rejoin("<history maxchars='0'/>", [])
    await rejoin("<history seconds='0'/>", [])
    await rejoin("<history maxstanzas='3'/>", ["coucou 2", "coucou 3", "coucou 4"])
    since = first_timestamp.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    await rejoin(f"<history since='{since}'/>", ["coucou 3", "coucou 4"])
    # biboumi uses seconds='1' right after; the window here is the time since 'coucou 3'
    # when the join is sent, rounded up (+0.5 s of slack), so it covers 3 and 4 but not 2,
    # which was sent 2 s before 3.
    await rejoin(
        lambda: f"<history seconds='{math.ceil(time.time() - third_sent + 0.5)}'/>",
        ["coucou 3", "coucou 4"],
    )
    await rejoin("<history seconds='3600'/>", ["coucou", "coucou 2", "coucou 3", "coucou 4"])


# -- pings and versions -----------------------------------------------------------------------


async def test_self_ping_on_real_channel(stack: Stack) -> None:
    """self_ping_on_real_channel: a joined resource pinging its own occupant gets a result."""
    sc = await simple_channel_join(stack)
    sc.send(
        "<iq type='get' from='{jid_one}/{resource_one}' id='first_ping' to='#foo%{irc_server_one}/{nick_one}'><ping xmlns='urn:xmpp:ping' /></iq>"
    )
    await sc.expect(
        "/iq[@from='#foo%{irc_server_one}/{nick_one}'][@type='result'][@to='{jid_one}/{resource_one}'][@id='first_ping']"
    )
    await stack.login("{jid_one}/{resource_two}")
    sc.send(
        "<presence from='{jid_one}/{resource_two}' to='#foo%{irc_server_one}/{nick_one}'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
    )
    await sc.expect("/message[@to='{jid_one}/{resource_two}']/subject")
    sc.send(
        "<iq type='get' from='{jid_one}/{resource_two}' id='third_ping' to='#foo%{irc_server_one}/{nick_one}'><ping xmlns='urn:xmpp:ping' /></iq>"
    )
    await sc.expect(
        "/iq[@from='#foo%{irc_server_one}/{nick_one}'][@type='result'][@to='{jid_one}/{resource_two}'][@id='third_ping']"
    )


async def test_self_ping_not_in_muc(stack: Stack) -> None:
    """self_ping_not_in_muc: not joined (room, or this resource) → not-acceptable."""
    sc = await simple_channel_join(stack)
    sc.send(
        "<iq type='get' from='{jid_one}/{resource_one}' id='first_ping' to='#nil%{irc_server_one}/{nick_one}'><ping xmlns='urn:xmpp:ping' /></iq>"
    )
    await sc.expect(
        "/iq[@from='#nil%{irc_server_one}/{nick_one}'][@type='error'][@to='{jid_one}/{resource_one}'][@id='first_ping']/error/stanza:not-acceptable"
    )
    await stack.login("{jid_one}/{resource_two}")
    sc.send(
        "<iq type='get' from='{jid_one}/{resource_two}' id='first_ping' to='#foo%{irc_server_one}/{nick_one}'><ping xmlns='urn:xmpp:ping' /></iq>"
    )
    await sc.expect(
        "/iq[@from='#foo%{irc_server_one}/{nick_one}'][@type='error'][@to='{jid_one}/{resource_two}'][@id='first_ping']/error/stanza:not-acceptable"
    )


async def test_version_of_an_irc_occupant(stack: Stack) -> None:
    """Issue 11: jabber:iq:version to room/nick asks the IRC user (CTCP VERSION)."""
    bob = await stack.irc("bob")
    await bob.join("#foo")
    sc = await simple_channel_join(stack)
    sc.send(
        "<iq type='get' from='{jid_one}/{resource_one}' id='v1' to='#foo%{irc_server_one}/bob'><query xmlns='jabber:iq:version' /></iq>"
    )
    await bob.expect(r"^:Nick!\S+ PRIVMSG bob :\x01VERSION\x01$", timeout=15)
    await bob.send("NOTICE Nick :\x01VERSION irssi v1.4.5 - running on Linux x86_64\x01")
    answer = await sc.expect(
        "/iq[@from='#foo%{irc_server_one}/bob'][@type='result'][@to='{jid_one}/{resource_one}'][@id='v1']/version:query/version:name"
    )
    # biboumi puts the whole reply in <name>, and so does Portway.
    said = text_at(answer.xml, "/iq/version:query/version:name")
    assert said == "irssi v1.4.5 - running on Linux x86_64", answer
    # The same through the nick's own JID.
    sc.send(
        "<iq type='get' from='{jid_one}/{resource_one}' id='v2' to='bob%{irc_server_one}'><query xmlns='jabber:iq:version' /></iq>"
    )
    await bob.expect(r"^:Nick!\S+ PRIVMSG bob :\x01VERSION\x01$", timeout=15)
    await bob.send("NOTICE Nick :\x01VERSION irssi v1.4.5\x01")
    await sc.expect(
        "/iq[@from='bob%{irc_server_one}'][@type='result'][@id='v2']/version:query/version:name[re:test(text(), 'irssi')]"
    )
    # Only the gateway's own JID answers with Portway's version.
    sc.send(
        "<iq type='get' from='{jid_one}/{resource_one}' id='v3' to='{biboumi_host}'><query xmlns='jabber:iq:version' /></iq>"
    )
    await sc.expect(
        "/iq[@type='result'][@id='v3']/version:query/version:name[re:test(text(), '(?i)portway')]"
    )


async def test_version_of_a_silent_occupant_is_an_error(stack: Stack) -> None:
    """Issue 11: no CTCP VERSION reply → an error, not Portway's own version."""
    bob = await stack.irc("bob")
    await bob.join("#foo")
    sc = await simple_channel_join(stack)
    sc.send(
        "<iq type='get' from='{jid_one}/{resource_one}' id='v1' to='#foo%{irc_server_one}/bob'><query xmlns='jabber:iq:version' /></iq>"
    )
    await bob.expect(r"PRIVMSG bob :\x01VERSION\x01$", timeout=15)
    await sc.expect(
        "/iq[@from='#foo%{irc_server_one}/bob'][@type='error'][@id='v1']/error", timeout=60
    )


async def test_self_version(stack: Stack) -> None:
    """self_version, as Portway documents it: a version query to the user's own occupant
    gets an answer (Portway's ``version_reply``), and never hangs.

    It differs from biboumi on purpose. biboumi forwards a CTCP VERSION to the user's XMPP
    client and answers IRC with what the client says, which tells everyone on IRC which
    client (and often which system) the user runs. Portway answers CTCP VERSION itself, with
    ``version_reply`` (private_messages.answer_ctcp), and never asks the user's client; so
    the user's own occupant, asked through IRC, says the gateway's words.
    """
    sc = await simple_channel_join(stack)
    sc.send(
        "<iq type='get' from='{jid_one}/{resource_one}' id='first_version' to='#foo%{irc_server_one}/{nick_one}'><query xmlns='jabber:iq:version' /></iq>"
    )
    answer = await sc.expect(
        "/iq[@from='#foo%{irc_server_one}/{nick_one}'][@type='result'][@to='{jid_one}/{resource_one}'][@id='first_version']/version:query/version:name",
        timeout=30,
    )
    assert text_at(answer.xml, "/iq/version:query/version:name") == "Portway XMPP gateway"
    # The user's client was never asked (biboumi would have sent it an iq get).
    await sc.expect_nothing(
        "/iq[@type='get'][@to='{jid_one}/{resource_one}']/version:query", within=0
    )


# -- protocol details -------------------------------------------------------------------------


async def test_error_stanzas_are_in_the_component_namespace(recorded: Stack) -> None:
    """Issue 11: stanzas on the component stream are in its namespace, errors included."""
    stack = recorded
    await stack.login("{jid_one}/{resource_one}")
    sc = stack.scenario
    sc.send(
        "<message id='m1' from='{jid_one}/{resource_one}' to='nobody%unknown.example@{biboumi_host}' type='chat'><body>hi</body></message>"
    )
    await sc.expect("/message[@id='m1'][@type='error']/error")
    sc.send(
        "<iq type='get' id='q1' from='{jid_one}/{resource_one}' to='#foo%{irc_server_one}'><query xmlns='urn:example:unknown'/></iq>"
    )
    await sc.expect("/iq[@id='q1'][@type='error']/error")
    assert stack.recorder is not None
    wire = stack.recorder.text()
    assert 'type="error"' in wire or "type='error'" in wire, "no error stanza went on the wire"
    wrong = STANZA_TAG_IN_CLIENT_NS.findall(wire)
    assert not wrong, f"{len(wrong)} stanza(s) sent in jabber:client: {wrong[:5]}"


async def test_stable_id(stack: Stack) -> None:
    """stable_id: origin-id and others' stanza-id kept; a forged room stanza-id replaced."""
    sc = await simple_channel_join(stack)
    sc.send(
        """<message id='first_id' from='{jid_one}/{resource_one}' to='#foo%{irc_server_one}' type='groupchat'>
      <origin-id xmlns='urn:xmpp:sid:0' id='client-origin-id-should-be-kept'/>
      <stanza-id xmlns='urn:xmpp:sid:0' id='client-stanza-id-should-be-removed' by='#foo%{irc_server_one}'/>
      <stanza-id xmlns='urn:xmpp:sid:0' id='client-stanza-id-should-be-kept' by='someother@jid'/>
      <body>coucou</body></message>"""
    )
    await sc.expect(
        "/message/stable_id:origin-id[@id='client-origin-id-should-be-kept']",
        "/message/stable_id:stanza-id[@id][@by='#foo%{irc_server_one}']",
        "!/message/stable_id:stanza-id[@id='client-stanza-id-should-be-removed']",
        "/message/stable_id:stanza-id[@id='client-stanza-id-should-be-kept'][@by='someother@jid']",
    )


async def test_muc_message_from_unjoined_resource(stack: Stack) -> None:
    """muc_message_from_unjoined_resource: refused with not-acceptable (XEP-0410 relies on it).

    biboumi also says type='modify' and 'You are not a participant in this room.'; the
    wording and type are its own, so only the condition is kept.
    """
    sc = await simple_channel_join(stack)
    await stack.login("{jid_one}/{resource_two}")
    sc.send(
        "<message from='{jid_one}/{resource_two}' to='#foo%{irc_server_one}' type='groupchat'><body>coucou</body></message>"
    )
    await sc.expect(
        "/message[@type='error'][@from='#foo%{irc_server_one}'][@to='{jid_one}/{resource_two}']/error/stanza:not-acceptable",
    )


async def test_first_raw_command_is_not_dropped(stack: Stack) -> None:
    """Issue 11 (raw_message): the first raw command waits for the connection, then runs;
    and that connection does not fix the nick of a later join."""
    watcher = await stack.irc("watcher")
    await stack.login("{jid_one}/{resource_one}")
    sc = stack.scenario
    sc.send(
        "<message from='{jid_one}/{resource_one}' to='{irc_server_one}' type='chat'><body>WHOIS watcher</body></message>"
    )
    await sc.expect(
        # biboumi prefixes the server's name ('irc.localhost: watcher ~watcher ...')
        "/message[@from='{irc_server_one}'][@type='chat']/body[re:test(text(), '^({irc_host_one}: )?watcher ~watcher 127.0.0.1 \\* ')]",
        timeout=30,
    )
    await sc.expect_nothing(
        "/message[@from='{irc_server_one}']/body[re:test(text(), '(?i)not connected')]", within=0.5
    )
    sc.send(
        "<presence from='{jid_one}/{resource_one}' to='#foo%{irc_server_one}/zed'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
    )
    await sc.expect(
        "/presence[@from='#foo%{irc_server_one}/zed'][@to='{jid_one}/{resource_one}']/muc_user:x/muc_user:status[@code='110']",
        "!/presence/muc_user:x/muc_user:status[@code='210']",
        "!/presence/status[re:test(text(), '(?i)changed by the server')]",
    )
    sc.send(
        "<message from='{jid_one}/{resource_one}' to='#foo%{irc_server_one}' type='groupchat'><body>I am zed</body></message>"
    )
    await watcher.send("JOIN #foo")
    await watcher.expect(r"^:\S+ 366 ", timeout=15)
    await watcher.send("WHOIS zed")
    await watcher.expect(r"^:\S+ 311 watcher zed ", timeout=15)


async def test_away_does_not_replay_the_join(stack: Stack) -> None:
    """Issue 11: setting away sends AWAY only: no new occupant list, self-presence or subject."""
    watcher = await stack.irc("watcher")
    await watcher.join("#foo")
    sc = await simple_channel_join(stack)
    await sc.expect("/presence[@from='#foo%{irc_server_one}/watcher']")
    await asyncio.sleep(0.5)
    sc.drop_all()
    sc.send(
        "<presence from='{jid_one}/{resource_one}' to='#foo%{irc_server_one}/{nick_one}'><show>away</show><status>lunch</status></presence>"
    )
    await until_away(watcher, "Nick", "lunch")
    await sc.expect_nothing("/message[@from='#foo%{irc_server_one}']/subject", within=2)
    await sc.expect_nothing("/presence[@from='#foo%{irc_server_one}/watcher']", within=0)


async def until_away(watcher: RawIrcClient, nick: str, message: str) -> None:
    """WHOIS until the server says `nick` is away with `message` (AWAY reached IRC)."""
    for _ in range(30):
        await watcher.send(f"WHOIS {nick}")
        end = await watcher.expect(rf"^:\S+ (301|318) watcher {nick} ", timeout=15)
        if f" 301 watcher {nick} :{message}" in end:
            return
        await asyncio.sleep(0.3)
    raise AssertionError(f"{nick} never went away on IRC")


async def test_server_presence_only_to_subscribers(stack: Stack) -> None:
    """Issue 11: the server JID's "connected as" presence goes only to subscribers."""
    sc = await simple_channel_join(stack)
    await sc.expect_nothing("/presence[@from='{irc_server_one}']", within=2)


async def test_channel_names_keep_their_characters(stack: Stack) -> None:
    """Issue 11: `#foo[bar]` is not folded to `#foo{bar}` in the room JID."""
    bob = await stack.irc("bob")
    await bob.join("#foo[bar]")
    await stack.login("{jid_one}/{resource_one}")
    sc = stack.scenario
    await join(sc, "#foo[bar]")
    await bob.privmsg("#foo[bar]", "brackets")
    await sc.expect(
        "/message[@from='#foo[bar]%{irc_server_one}/bob'][@type='groupchat']/body[text()='brackets']"
    )


async def test_shutdown_leaves_rooms_with_332(stack: Stack) -> None:
    """Issue 11: on SIGTERM each joined resource gets an unavailable self-presence, 332."""
    sc = await simple_channel_join(stack)
    await stack.gateway.astop()
    await sc.expect(
        "/presence[@type='unavailable'][@from='#foo%{irc_server_one}/{nick_one}'][@to='{jid_one}/{resource_one}']/muc_user:x/muc_user:status[@code='332']",
        "/presence/muc_user:x/muc_user:status[@code='110']",
    )
