"""biboumi's end-to-end scenarios on rooms, ported to Prosody + ngIRCd + `portway run`.

Issue 11 is accepted by running biboumi's own scenarios (louiz/biboumi, tests/end_to_end/
scenarios/) with only the domains changed. Each test names the scenario it ports; the XML
sent and the XPaths expected are biboumi's, with `irc.localhost@biboumi.localhost` become
`irc.localhost@irc.gw` and `first@example.com` become `first@example.org`. What differs,
and why, is said where it happens (see tests/support/scenario.py for the harness).

biboumi's `~Nick2@localhost` (oragono's answer for user@host) is read here from ngIRCd's
WHOIS instead, so the occupant JID is still checked exactly.
"""

# Stanzas and XPaths are biboumi's, one per line as in its scenarios, to compare them side by side.
# ruff: noqa: E501

from __future__ import annotations

import asyncio
import re
import xml.etree.ElementTree as ET

import pytest
from support.irc_client import RawIrcClient
from support.scenario import Scenario, Stack, attribute_at

pytestmark = pytest.mark.e2e

JOIN = "<presence from='{jid_one}/{resource_one}' to='#foo%{irc_server_one}/{nick_one}'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
JOIN_TWO = "<presence from='{jid_two}/{resource_one}' to='#foo%{irc_server_one}/{nick_two}'><x xmlns='http://jabber.org/protocol/muc'/></presence>"


async def irc_identity(observer: RawIrcClient, nick: str) -> str:
    """`user@host` of a nick as the IRC server shows it (biboumi's `~Nick2@localhost`)."""
    await observer.send(f"WHOIS {nick}")
    line = await observer.expect(rf"^:\S+ 311 \S+ {re.escape(nick)} ", timeout=15)
    user, host = line.split(" ")[4:6]
    return f"{user}@{host}"


async def expect_self_join_presence(
    sc: Scenario,
    jid: str = "{jid_one}/{resource_one}",
    chan: str = "#foo",
    nick: str = "{nick_one}",
) -> None:
    """simple_channel_join.expect_self_join_presence: 100 and 110, then an empty subject."""
    await sc.expect(
        f"/presence[@to='{jid}'][@from='{chan}%{{irc_server_one}}/{nick}']/muc_user:x/muc_user:item[@affiliation='admin'][@role='moderator']",
        "/presence/muc_user:x/muc_user:status[@code='100']",  # Rooms are all non-anonymous
        "/presence/muc_user:x/muc_user:status[@code='110']",
    )
    await sc.expect(
        f"/message[@from='{chan}%{{irc_server_one}}'][@type='groupchat']/subject[not(text())]"
    )


async def simple_channel_join(stack: Stack, *, creator: bool = True) -> Scenario:
    """biboumi's simple_channel_join; `creator=False` when an IRC user made the channel
    (then we are not its operator, so the item's role is not checked)."""
    sc = stack.scenario
    await stack.login("{jid_one}/{resource_one}")
    sc.send(JOIN)
    if creator:
        await expect_self_join_presence(sc)
    else:
        await sc.expect(
            "/presence[@to='{jid_one}/{resource_one}'][@from='#foo%{irc_server_one}/{nick_one}']/muc_user:x/muc_user:status[@code='110']",
            "/presence/muc_user:x/muc_user:status[@code='100']",
        )
        await sc.expect("/message[@from='#foo%{irc_server_one}'][@type='groupchat']/subject")
    return sc


async def channel_join_with_two_users(stack: Stack, *, check_jids: bool = True) -> Scenario:
    """channel_join_with_two_users: each side sees the other, with a real occupant JID.

    biboumi's kick and mode scenarios start with this one, occupant JIDs included; they
    pass `check_jids=False` here so that a missing JID (shown by
    test_channel_join_with_two_users) does not hide what they test.
    """
    sc = await simple_channel_join(stack)
    await stack.login("{jid_two}/{resource_one}")
    sc.send(JOIN_TWO)
    watcher = await stack.irc("watcher")
    sc.replacements["ident_two"] = await _identity_when_joined(watcher, "Nick2")
    sc.replacements["ident_one"] = await irc_identity(watcher, "Nick")
    groups = [
        [
            "/presence[@to='{jid_one}/{resource_one}'][@from='#foo%{irc_server_one}/{nick_two}']/muc_user:x/muc_user:item[@affiliation='none'][@role='participant'][@jid='{lower_nick_two}%{irc_server_one}/{ident_two}']"
        ],
        [
            "/presence[@to='{jid_two}/{resource_one}'][@from='#foo%{irc_server_one}/{nick_one}']/muc_user:x/muc_user:item[@affiliation='admin'][@role='moderator'][@jid='{lower_nick_one}%{irc_server_one}/{ident_one}']"
        ],
        [
            "/presence[@to='{jid_two}/{resource_one}'][@from='#foo%{irc_server_one}/{nick_two}']/muc_user:x/muc_user:item[@affiliation='none'][@jid='{lower_nick_two}%{irc_server_one}/{ident_two}'][@role='participant']",
            "/presence/muc_user:x/muc_user:status[@code='110']",
        ],
        ["/message[@from='#foo%{irc_server_one}'][@type='groupchat']/subject[not(text())]"],
    ]
    if not check_jids:
        groups = [[re.sub(r"\[@jid='[^']*'\]", "", x) for x in group] for group in groups]
    await sc.expect_unordered(*groups)
    await watcher.close()
    return sc


async def _identity_when_joined(watcher: RawIrcClient, nick: str) -> str:
    """Wait until `nick` is in #foo (NAMES lists it), then read its user@host."""
    for _ in range(50):
        await watcher.send("NAMES #foo")
        names = await watcher.expect(r"^:\S+ 353 ", timeout=15)
        await watcher.expect(r"^:\S+ 366 ", timeout=15)
        if nick in re.sub(r"[@+%&~]", "", names.split(":", 2)[-1]).split():
            return await irc_identity(watcher, nick)
        await asyncio.sleep(0.2)
    raise AssertionError(f"{nick} never joined #foo on IRC")


# -- the scenarios ----------------------------------------------------------------------------


async def test_simple_channel_join(stack: Stack) -> None:
    """simple_channel_join: self-presence with 100 and 110, then an empty subject."""
    await simple_channel_join(stack)


async def test_channel_join_with_two_users(stack: Stack) -> None:
    """channel_join_with_two_users: occupant items carry `nick%server@gw/user@host`."""
    await channel_join_with_two_users(stack)


async def test_nick_conflict_on_join_sends_210(stack: Stack) -> None:
    """Issue 11: asking for a taken nick gives 110 + 210 from the nick really assigned."""
    holder = await stack.irc("Nick")
    await holder.join("#foo")
    sc = stack.scenario
    await stack.login("{jid_one}/{resource_one}")
    sc.send(JOIN)
    own = await sc.expect(
        "/presence[@to='{jid_one}/{resource_one}']/muc_user:x/muc_user:status[@code='110']",
        "/presence/muc_user:x/muc_user:status[@code='210']",
        "/presence/muc_user:x/muc_user:status[@code='100']",
    )
    assigned = str(own.stanza["from"].resource)
    assert assigned and assigned != "Nick", f"self-presence from {own.stanza['from']}"
    await holder.expect(rf"^:{re.escape(assigned)}!\S+ JOIN :?#foo", timeout=15)
    # The real Nick is an ordinary occupant, not us.
    await sc.expect(
        "/presence[@to='{jid_one}/{resource_one}'][@from='#foo%{irc_server_one}/{nick_one}']",
        "!/presence/muc_user:x/muc_user:status[@code='110']",
    )


async def test_channel_join_with_different_nick(stack: Stack) -> None:
    """channel_join_with_different_nick: one connection, one nick; later nicks are ignored."""
    sc = await simple_channel_join(stack)
    sc.send(
        "<presence from='{jid_one}/{resource_one}' to='#bar%{irc_server_one}/{nick_two}'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
    )
    await expect_self_join_presence(sc, chan="#bar", nick="{nick_one}")
    await stack.login("{jid_one}/{resource_two}")
    sc.send(
        "<presence from='{jid_one}/{resource_two}' to='#foo%{irc_server_one}/{nick_two}'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
    )
    await sc.expect(
        "/presence[@to='{jid_one}/{resource_two}'][@from='#foo%{irc_server_one}/{nick_one}']"
    )
    await sc.expect("/message[@to='{jid_one}/{resource_two}']/subject")


async def test_channel_messages(stack: Stack) -> None:
    """channel_messages: a groupchat message reaches both users; the sender's id is kept."""
    sc = await channel_join_with_two_users(stack)
    sc.send(
        "<message id='first_id' from='{jid_one}/{resource_one}' to='#foo%{irc_server_one}' type='groupchat'><body>coucou</body></message>"
    )
    await sc.expect_unordered(
        [
            "/message[@id='first_id'][@from='#foo%{irc_server_one}/{nick_one}'][@to='{jid_one}/{resource_one}'][@type='groupchat']/body[text()='coucou']",
            "/message/stable_id:stanza-id[@by='#foo%{irc_server_one}'][@id]",
        ],
        [
            "/message[@id][@from='#foo%{irc_server_one}/{nick_one}'][@to='{jid_two}/{resource_one}'][@type='groupchat']/body[text()='coucou']",
            "/message/stable_id:stanza-id[@by='#foo%{irc_server_one}'][@id]",
        ],
    )
    # A private message to an in-room JID reaches the other user from the server-wide JID
    # (biboumi checks `@to='{jid_two}'`, the bare JID; the resource is left to Portway).
    sc.send(
        "<message from='{jid_one}/{resource_one}' to='#foo%{irc_server_one}/{nick_two}' type='chat'><body>coucou in private</body></message>"
    )
    got = await sc.expect(
        "/message[@from='{lower_nick_one}%{irc_server_one}'][@type='chat']/body[text()='coucou in private']"
    )
    assert got.stanza["to"].bare == sc.format("{jid_two}")


async def test_private_reply_comes_from_the_room_jid(stack: Stack) -> None:
    """Issue 11: a private chat started from `room/nick` gets the IRC reply from `room/nick`.

    biboumi 10 chose the opposite (its channel_messages expects the reply from the
    server-wide JID); issue 11 asks for the address the user last wrote to. As for any
    stanza from an occupant, it goes to the joined resource (XEP-0045 routes to full JIDs).
    """
    bob = await stack.irc("bob")
    await bob.join("#foo")
    sc = await simple_channel_join(stack, creator=False)
    sc.send(
        "<message from='{jid_one}/{resource_one}' to='#foo%{irc_server_one}/bob' type='chat'><body>psst</body></message>"
    )
    await bob.expect(r"^:Nick!\S+ PRIVMSG bob :psst$", timeout=15)
    await bob.privmsg("Nick", "psst back")
    await sc.expect(
        "/message[@from='#foo%{irc_server_one}/bob'][@to='{jid_one}/{resource_one}'][@type='chat']/body[text()='psst back']",
    )


async def test_private_message_to_a_missing_nick_is_an_error(stack: Stack) -> None:
    """Issue 11: IRC's 401 (no such nick) comes back as an error on that message.

    The condition must be one a client can act on: 401 is RFC 6120's item-not-found (or
    recipient-unavailable); undefined-condition is only for application conditions.
    """
    sc = await simple_channel_join(stack)
    sc.send(
        "<message id='to-ghost' from='{jid_one}/{resource_one}' to='ghost%{irc_server_one}' type='chat'><body>anyone?</body></message>"
    )
    error = await sc.expect(
        "/message[@id='to-ghost'][@type='error'][@from='ghost%{irc_server_one}'][@to='{jid_one}/{resource_one}']/error"
    )
    condition = attribute_at(error.xml, "/message/error", "type")
    assert condition == "cancel", error
    assert _conditions(error.xml) & {"item-not-found", "recipient-unavailable"}, error


async def test_simple_kick(stack: Stack) -> None:
    """simple_kick: a muc#admin kick becomes KICK; both see actor, reason, 307."""
    sc = await channel_join_with_two_users(stack, check_jids=False)
    sc.send(
        "<iq id='kick1' to='#foo%{irc_server_one}' from='{jid_one}/{resource_one}' type='set'><query xmlns='http://jabber.org/protocol/muc#admin'><item nick='{nick_two}' role='none'><reason>reported</reason></item></query></iq>"
    )
    await sc.expect_unordered(
        [
            "/presence[@type='unavailable'][@to='{jid_two}/{resource_one}']/muc_user:x/muc_user:item[@role='none']/muc_user:actor[@nick='{nick_one}']",
            "/presence/muc_user:x/muc_user:item/muc_user:reason[text()='reported']",
            "/presence/muc_user:x/muc_user:status[@code='307']",
            "/presence/muc_user:x/muc_user:status[@code='110']",
        ],
        [
            "/presence[@type='unavailable'][@to='{jid_one}/{resource_one}']/muc_user:x/muc_user:item[@role='none']/muc_user:actor[@nick='{nick_one}']",
            "/presence/muc_user:x/muc_user:item/muc_user:reason[text()='reported']",
            "/presence/muc_user:x/muc_user:status[@code='307']",
        ],
        ["/iq[@id='kick1'][@type='result']"],
    )


async def test_kick_from_irc_has_actor_and_reason(stack: Stack) -> None:
    """Issue 11: a KICK typed on IRC shows `<actor nick=…>` and `<reason>`, not only text."""
    op = await stack.irc("op")
    await op.join("#foo")  # first in: channel operator
    sc = await simple_channel_join(stack, creator=False)
    await op.expect(r"^:Nick!\S+ JOIN", timeout=15)
    await op.send("KICK #foo Nick :behave")
    await sc.expect(
        "/presence[@type='unavailable'][@from='#foo%{irc_server_one}/{nick_one}'][@to='{jid_one}/{resource_one}']/muc_user:x/muc_user:item[@role='none']/muc_user:actor[@nick='op']",
        "/presence/muc_user:x/muc_user:item/muc_user:reason[text()='behave']",
        "/presence/muc_user:x/muc_user:status[@code='307']",
        "/presence/muc_user:x/muc_user:status[@code='110']",
    )


async def test_mode_change(stack: Stack) -> None:
    """mode_change: `/mode` in a room and muc#admin items become MODE, shown in the room."""
    sc = await channel_join_with_two_users(stack, check_jids=False)
    sc.send(
        "<message from='{jid_one}/{resource_one}' to='#foo%{irc_server_one}' type='groupchat'><body>/mode +v {nick_two}</body></message>"
    )
    await sc.expect_unordered(
        [
            "/message[@to='{jid_one}/{resource_one}']/body[text()='Mode #foo [+v {nick_two}] by {nick_one}']"
        ],
        [
            "/message[@to='{jid_two}/{resource_one}']/body[text()='Mode #foo [+v {nick_two}] by {nick_one}']"
        ],
        [
            "/presence[@to='{jid_two}/{resource_one}'][@from='#foo%{irc_server_one}/{nick_two}']/muc_user:x/muc_user:item[@affiliation='member'][@role='participant']"
        ],
        [
            "/presence[@to='{jid_one}/{resource_one}'][@from='#foo%{irc_server_one}/{nick_two}']/muc_user:x/muc_user:item[@affiliation='member'][@role='participant']"
        ],
    )
    # using an iq
    sc.send(
        "<iq from='{jid_one}/{resource_one}' id='id1' to='#foo%{irc_server_one}' type='set'><query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='admin' nick='{nick_two}'/></query></iq>"
    )
    await sc.expect_unordered(
        [
            "/message[@to='{jid_one}/{resource_one}']/body[text()='Mode #foo [+o {nick_two}] by {nick_one}']"
        ],
        [
            "/message[@to='{jid_two}/{resource_one}']/body[text()='Mode #foo [+o {nick_two}] by {nick_one}']"
        ],
        [
            "/presence[@to='{jid_two}/{resource_one}'][@from='#foo%{irc_server_one}/{nick_two}']/muc_user:x/muc_user:item[@affiliation='admin'][@role='moderator']"
        ],
        [
            "/presence[@to='{jid_one}/{resource_one}'][@from='#foo%{irc_server_one}/{nick_two}']/muc_user:x/muc_user:item[@affiliation='admin'][@role='moderator']"
        ],
        [
            "/iq[@id='id1'][@type='result'][@to='{jid_one}/{resource_one}'][@from='#foo%{irc_server_one}']"
        ],
    )
    # Remove +v manually. User ONLY has +o now. This doesn't change the role/affiliation
    sc.send(
        "<message from='{jid_one}/{resource_one}' to='#foo%{irc_server_one}' type='groupchat'><body>/mode -v {nick_two}</body></message>"
    )
    await sc.expect_unordered(
        [
            "/message[@to='{jid_one}/{resource_one}']/body[text()='Mode #foo [-v {nick_two}] by {nick_one}']"
        ],
        [
            "/message[@to='{jid_two}/{resource_one}']/body[text()='Mode #foo [-v {nick_two}] by {nick_one}']"
        ],
        [
            "/presence[@to='{jid_two}/{resource_one}'][@from='#foo%{irc_server_one}/{nick_two}']/muc_user:x/muc_user:item[@affiliation='admin'][@role='moderator']"
        ],
        [
            "/presence[@to='{jid_one}/{resource_one}'][@from='#foo%{irc_server_one}/{nick_two}']/muc_user:x/muc_user:item[@affiliation='admin'][@role='moderator']"
        ],
    )
    # remove the mode
    sc.send(
        "<iq from='{jid_one}/{resource_one}' id='id2' to='#foo%{irc_server_one}' type='set'><query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='member' nick='{nick_two}' role='participant'/></query></iq>"
    )
    await sc.expect_unordered(
        [
            "/message[@to='{jid_one}/{resource_one}']/body[text()='Mode #foo [+v-o {nick_two} {nick_two}] by {nick_one}']"
        ],
        [
            "/message[@to='{jid_two}/{resource_one}']/body[text()='Mode #foo [+v-o {nick_two} {nick_two}] by {nick_one}']"
        ],
        [
            "/presence[@to='{jid_two}/{resource_one}'][@from='#foo%{irc_server_one}/{nick_two}']/muc_user:x/muc_user:item[@affiliation='member'][@role='participant']"
        ],
        [
            "/presence[@to='{jid_one}/{resource_one}'][@from='#foo%{irc_server_one}/{nick_two}']/muc_user:x/muc_user:item[@affiliation='member'][@role='participant']"
        ],
        [
            "/iq[@id='id2'][@type='result'][@to='{jid_one}/{resource_one}'][@from='#foo%{irc_server_one}']"
        ],
    )
    # using an iq, and a non-existent nick
    sc.send(
        "<iq from='{jid_one}/{resource_one}' id='id3' to='#foo%{irc_server_one}' type='set'><query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='admin' nick='blectre'/></query></iq>"
    )
    await sc.expect("/iq[@id='id3'][@type='error']")
    # using an iq, without the rights to do it: IRC refuses (482), so does the room
    sc.send(
        "<iq from='{jid_two}/{resource_one}' id='id4' to='#foo%{irc_server_one}' type='set'><query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='admin' nick='{nick_one}'/></query></iq>"
    )
    refused = await sc.expect("/iq[@id='id4'][@type='error']/error")
    assert _conditions(refused.xml) & {"not-allowed", "forbidden"}, refused


def _conditions(stanza: ET.Element) -> set[str]:
    """The defined conditions of a stanza's <error/> (not-allowed, forbidden, ...)."""
    error = stanza.find("{jabber:client}error")
    return {child.tag.rpartition("}")[2] for child in (error if error is not None else [])}


async def test_muc_admin_items_become_kick_and_mode_lines(stack: Stack) -> None:
    """Issue 11: kick → KICK, voice/op → MODE ±v/±o, outcast → MODE +b mask, on IRC."""
    sc = await simple_channel_join(stack)
    victim = await stack.irc("victim")
    await victim.join("#foo")
    await sc.expect("/presence[@from='#foo%{irc_server_one}/victim']")
    # Voice is a role in XEP-0045 (participant/visitor); the affiliations map as biboumi's
    # forward_affiliation_role_change does: member +v, admin +o, none drops both.
    for item, line in (
        ("role='participant'", r"MODE #foo \+v victim"),
        ("role='visitor'", r"MODE #foo -v victim"),
        ("affiliation='member'", r"MODE #foo \+v victim"),
        ("affiliation='admin'", r"MODE #foo \+o victim"),
        ("affiliation='none'", r"MODE #foo -(v-?o|o-?v) victim victim"),
    ):
        sc.send(
            "<iq from='{jid_one}/{resource_one}' id='m' to='#foo%{irc_server_one}' type='set'><query xmlns='http://jabber.org/protocol/muc#admin'>"
            f"<item nick='victim' {item}/></query></iq>"
        )
        await sc.expect("/iq[@id='m'][@type='result']")
        await victim.expect(rf"^:Nick!\S+ {line}$", timeout=15)
    sc.send(
        "<iq from='{jid_one}/{resource_one}' id='ban' to='#foo%{irc_server_one}' type='set'><query xmlns='http://jabber.org/protocol/muc#admin'><item nick='victim' affiliation='outcast'><reason>spam</reason></item></query></iq>"
    )
    await victim.expect(r"^:Nick!\S+ MODE #foo \+b \S*[!@]\S*$", timeout=15)
    await sc.expect("/iq[@id='ban'][@type='result']")
    sc.send(
        "<iq from='{jid_one}/{resource_one}' id='kick' to='#foo%{irc_server_one}' type='set'><query xmlns='http://jabber.org/protocol/muc#admin'><item nick='victim' role='none'><reason>bye now</reason></item></query></iq>"
    )
    await victim.expect(r"^:Nick!\S+ KICK #foo victim :bye now$", timeout=15)
    await sc.expect("/iq[@id='kick'][@type='result']")


async def test_slash_commands_in_a_room(stack: Stack) -> None:
    """Issue 11: `/mode` becomes MODE, `/me` stays an action, other `/text` goes as text."""
    sc = await simple_channel_join(stack)  # first in: we are the channel operator
    watcher = await stack.irc("watcher")
    await watcher.join("#foo")
    sc.send(
        "<message from='{jid_one}/{resource_one}' to='#foo%{irc_server_one}' type='groupchat'><body>/mode +m</body></message>"
    )
    await watcher.expect(r"^:Nick!\S+ MODE #foo \+m$", timeout=15)
    await sc.expect(
        "/message[@to='{jid_one}/{resource_one}']/body[text()='Mode #foo [+m] by {nick_one}']"
    )
    sc.send(
        "<message from='{jid_one}/{resource_one}' to='#foo%{irc_server_one}' type='groupchat'><body>/me waves</body></message>"
    )
    await watcher.expect("^:Nick!\\S+ PRIVMSG #foo :\x01ACTION waves\x01$", timeout=15)
    sc.send(
        "<message from='{jid_one}/{resource_one}' to='#foo%{irc_server_one}' type='groupchat'><body>/shrug whatever</body></message>"
    )
    await watcher.expect(r"^:Nick!\S+ PRIVMSG #foo :/shrug whatever$", timeout=15)


async def test_multiline_message(stack: Stack) -> None:
    """multiline_message: one message per IRC line, in order; the first keeps the id."""
    sc = await simple_channel_join(stack)
    sc.send(
        "<message id='the-message-id' from='{jid_one}/{resource_one}' to='#foo%{irc_server_one}' type='groupchat'><body>un\ndeux\ntrois</body></message>"
    )
    await sc.expect_in_order(
        [
            "/message[@from='#foo%{irc_server_one}/{nick_one}'][@id='the-message-id'][@to='{jid_one}/{resource_one}'][@type='groupchat']/body[text()='un']"
        ],
        [
            "/message[@from='#foo%{irc_server_one}/{nick_one}'][@id][@to='{jid_one}/{resource_one}'][@type='groupchat']/body[text()='deux']"
        ],
        [
            "/message[@from='#foo%{irc_server_one}/{nick_one}'][@id][@to='{jid_one}/{resource_one}'][@type='groupchat']/body[text()='trois']"
        ],
    )
    sc.send(
        "<message from='{jid_one}/{resource_one}' to='#foo%{irc_server_one}' type='groupchat'><body>hello</body></message>"
    )
    await sc.expect("!/message[@id='']", "/message[@id]/body[text()='hello']")


async def test_multiple_channels_join(stack: Stack) -> None:
    """multiple_channels_join: three joins at once; the first nick wins; answers in order."""
    sc = stack.scenario
    await stack.login("{jid_one}/{resource_one}")
    sc.send(JOIN)
    sc.send(
        "<presence from='{jid_one}/{resource_one}' to='#bar%{irc_server_one}/{nick_two}'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
    )
    sc.send(
        "<presence from='{jid_one}/{resource_one}' to='#baz%{irc_server_one}/{nick_three}'><x xmlns='http://jabber.org/protocol/muc'><password>SECRET</password></x></presence>"
    )
    own = "/muc_user:x/muc_user:status[@code='110']"
    await sc.expect_in_order(
        [
            f"/presence[@to='{{jid_one}}/{{resource_one}}'][@from='#foo%{{irc_server_one}}/{{nick_one}}']{own}"
        ],
        [
            f"/presence[@to='{{jid_one}}/{{resource_one}}'][@from='#bar%{{irc_server_one}}/{{nick_one}}']{own}"
        ],
        [
            f"/presence[@to='{{jid_one}}/{{resource_one}}'][@from='#baz%{{irc_server_one}}/{{nick_one}}']{own}"
        ],
        timeout=30,
    )
    await sc.expect_unordered(
        ["/message[@from='#foo%{irc_server_one}'][@type='groupchat']/subject[not(text())]"],
        ["/message[@from='#bar%{irc_server_one}'][@type='groupchat']/subject[not(text())]"],
        ["/message[@from='#baz%{irc_server_one}'][@type='groupchat']/subject[not(text())]"],
    )


async def test_notices(stack: Stack) -> None:
    """notices: `NOTICE Nick :[#foo] text` goes to #foo as `[notice] [#foo] text`."""
    sc = await simple_channel_join(stack)
    sc.send(
        "<message from='{jid_one}/{resource_one}' to='{irc_server_one}' type='chat'><body>NOTICE {nick_one} :[#foo] Hello in a notice.</body></message>"
    )
    await sc.expect(
        "/message[@from='#foo%{irc_server_one}/{nick_one}'][@type='groupchat']/body[text()='[notice] [#foo] Hello in a notice.']"
    )
    # The same from a service on IRC, as ChanServ sends them.
    service = await stack.irc("ChanServ")
    await service.send("NOTICE Nick :[#foo] Welcome to #foo.")
    await sc.expect(
        "/message[@from='#foo%{irc_server_one}/ChanServ'][@type='groupchat']/body[text()='[notice] [#foo] Welcome to #foo.']"
    )


async def test_invite_other(stack: Stack) -> None:
    """invite_other: `<invite to='Nick2'/>` (a bare nick) invites that IRC nick."""
    sc = stack.scenario
    await stack.login("{jid_one}/{resource_one}")
    sc.send(JOIN)
    await sc.expect(
        "/presence[@to='{jid_one}/{resource_one}']/muc_user:x/muc_user:status[@code='110']"
    )
    await stack.login("{jid_two}/{resource_two}")
    sc.send(
        "<presence from='{jid_two}/{resource_two}' to='#bar%{irc_server_one}/{nick_two}'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
    )
    await sc.expect(
        "/presence[@to='{jid_two}/{resource_two}']/muc_user:x/muc_user:status[@code='110']"
    )
    sc.send(
        "<message from='{jid_one}/{resource_one}' to='#foo%{irc_server_one}'><x xmlns='http://jabber.org/protocol/muc#user'><invite to='{nick_two}'/></x></message>"
    )
    await sc.expect("/message/body[text()='{nick_two} has been invited to #foo']")
    # biboumi checks `@to='{jid_two}/{resource_two}'`; Portway may address the bare JID.
    invite = await sc.expect(
        "/message[@from='#foo%{irc_server_one}']/muc_user:x/muc_user:invite[@from='#foo%{irc_server_one}/{nick_one}']"
    )
    assert invite.stanza["to"].bare == sc.format("{jid_two}")
