"""Reactions, replies, corrections and retractions across SMS, both ways, end to end.

Alice's client sends the real XEP-0444/0461/0308/0424 stanzas to a real Prosody; the gateway
runs as `portway run`; phones are played by the Twilio-shaped server, which posts tapback texts
exactly as iPhones and Android phones send them, signed as Twilio signs.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from slixmpp import Iq, Message
from slixmpp.xmlstream import StanzaBase
from support.fake_twilio import FakeMessage
from support.xmpp_client import XmppClient
from test_sms_gateway import ALICE_NUMBER, FRIEND, FRIEND_JID, SMS, World, receipt_for, send_sms
from test_sms_gateway import world as world  # the fixture, shared

pytestmark = pytest.mark.e2e

OTHER = "+15559990000"
OTHER_JID = f"{OTHER}@{SMS}"
REACTIONS = "{urn:xmpp:reactions:0}reactions"
COMMANDS = "http://jabber.org/protocol/commands"


# -- helpers -------------------------------------------------------------------------------------


async def texted(world: World, body: str, count: int) -> tuple[str, FakeMessage]:
    """Alice texts the friend; her message's id and the SMS, the ``count``-th one sent."""
    xmpp_id = send_sms(world.alice, body, receipt=False)
    messages = await world.twilio.wait_for_messages(count)
    return xmpp_id, messages[count - 1]


async def phone_says(world: World, body: str, sender: str = FRIEND) -> None:
    status, _ = await world.twilio.post_inbound(world.inbound_url, sender, ALICE_NUMBER, body)
    assert status == 200


async def reaction_from(world: World, contact_jid: str = FRIEND_JID) -> tuple[str, list[str]]:
    """The next XEP-0444 reaction Alice gets: the id it names and the whole set."""

    def is_reaction(stanza: StanzaBase) -> bool:
        return (
            isinstance(stanza, Message)
            and stanza["from"].bare == contact_jid
            and stanza.xml.find(REACTIONS) is not None
        )

    stanza = await world.alice.expect(is_reaction)
    assert not stanza["body"], "a reaction carries no text beside it"
    element = stanza.xml.find(REACTIONS)
    assert element is not None
    return element.get("id", ""), [(r.text or "") for r in element]


async def tapbacks_give(world: World, *steps: tuple[str, str, list[str]]) -> None:
    """Each text the phone sends gives Alice a reaction: on the message, the whole set."""
    for text, target, emojis in steps:
        await phone_says(world, text)
        assert await reaction_from(world) == (target, emojis), text


def react(client: XmppClient, message_id: str, *emojis: str, to: str = FRIEND_JID) -> str:
    own_id = str(uuid.uuid4())
    inner = "".join(f"<reaction>{emoji}</reaction>" for emoji in emojis)
    client.send_raw(
        f"<message to='{to}' type='chat' id='{own_id}'>"
        f"<reactions xmlns='urn:xmpp:reactions:0' id='{message_id}'>{inner}</reactions>"
        "<store xmlns='urn:xmpp:hints'/></message>"
    )
    return own_id


async def sent_after(world: World, count: int, sentinel: str) -> list[str]:
    """Bodies of the texts sent from the ``count``-th on, up to a sentinel Alice sends now.

    The outbox sends a user's texts in order: once the sentinel is out, whatever was to be
    sent before it is out too.
    """
    send_sms(world.alice, sentinel, receipt=False)
    async with asyncio.timeout(10):
        while not any(m.body == sentinel for m in world.twilio.messages):
            await asyncio.sleep(0.05)
    return [m.body for m in world.twilio.messages[count - 1 :]]


async def incoming(world: World, body: str) -> Message:
    """The friend texts Alice; the message her client gets."""
    await phone_says(world, body)
    return await world.alice.expect_message(from_=FRIEND_JID, body=body)


async def set_reactions(client: XmppClient, on: bool) -> str:
    """Run the ``sms-settings`` command as a client does: execute, then submit the form."""
    started = await client.iq(
        f"<iq type='set' to='{SMS}'><command xmlns='{COMMANDS}' node='sms-settings' "
        "action='execute'/></iq>"
    )
    assert started["type"] == "result", started
    form = started["command"]["form"].get_fields()
    assert form["reactions"]["type"] == "boolean"
    done = await client.iq(
        f"<iq type='set' to='{SMS}'><command xmlns='{COMMANDS}' node='sms-settings' "
        f"sessionid='{started['command']['sessionid']}' action='complete'>"
        "<x xmlns='jabber:x:data' type='submit'><field var='reactions'>"
        f"<value>{'1' if on else '0'}</value></field></x></command></iq>"
    )
    assert isinstance(done, Iq) and done["command"]["status"] == "completed", done
    return "\n".join(text for _kind, text in done["command"]["notes"])


# -- phones' tapbacks -> XEP-0444 ---------------------------------------------------------------


async def test_iphone_tapbacks_become_reactions_on_the_quoted_text(world: World) -> None:
    first, _ = await texted(world, "See you at 8", 1)
    long_text = "Shall we meet at the station or at the café near the river, whichever is closer?"
    second, _ = await texted(world, long_text, 2)

    await tapbacks_give(
        world,
        ("Liked “See you at 8”", first, ["👍"]),
        # cut with an ellipsis, as iPhones quote a long text
        ("Loved “Shall we meet at the station or at the café near…”", second, ["❤️"]),
        # the contact's whole set, as XEP-0444 says it
        ("Emphasized “See you at 8”", first, ["👍", "‼️"]),
        # straight quotes, and removals
        ('Removed a like from "See you at 8"', first, ["‼️"]),
        ("Removed an exclamation from “See you at 8”", first, []),
    )


async def test_android_reactions_and_removals_become_reactions(world: World) -> None:
    first, _ = await texted(world, "See you at 8", 1)
    await tapbacks_give(
        world,
        ("Reacted 😮 to “See you at 8”", first, ["😮"]),
        ('Reacted 👍🏽 to "See you at 8"', first, ["😮", "👍🏽"]),
        ("Removed 😮 from “See you at 8”", first, ["👍🏽"]),
    )


async def test_a_tapback_that_quotes_no_recent_text_of_alice_arrives_as_text(
    world: World,
) -> None:
    await texted(world, "See you at 8", 1)
    # quotes nothing Alice sent
    msg = await incoming(world, "Liked “See you at 9”")
    assert msg.xml.find(REACTIONS) is None
    # quotes the phone's own text, not Alice's
    await incoming(world, "Running late")
    msg = await incoming(world, "Liked “Running late”")
    assert msg.xml.find(REACTIONS) is None
    # quotes Alice's text to another phone: not this conversation's
    await phone_says(world, "Liked “See you at 8”", sender=OTHER)
    msg = await world.alice.expect_message(from_=OTHER_JID, body="Liked “See you at 8”")
    assert msg.xml.find(REACTIONS) is None


# -- XEP-0444 -> text ---------------------------------------------------------------------------


async def test_alice_reactions_are_texted_with_a_quote_and_removals_too(world: World) -> None:
    dinner = await incoming(world, "Dinner at 7? I booked the Thai place on Main Street near you")
    react(world.alice, dinner["id"], "👍")
    sent = await world.twilio.wait_for_messages(1)
    assert sent[0].body == "Reacted 👍 to “Dinner at 7? I booked the Thai place on Main…”"
    react(world.alice, dinner["id"], "👍", "❤️")
    react(world.alice, dinner["id"], "❤️")
    react(world.alice, dinner["id"])
    sent = await world.twilio.wait_for_messages(4)
    assert [m.body for m in sent[1:]] == [
        "Reacted ❤️ to “Dinner at 7? I booked the Thai place on Main…”",
        "Removed 👍 from “Dinner at 7? I booked the Thai place on Main…”",
        "Removed ❤️ from “Dinner at 7? I booked the Thai place on Main…”",
    ]
    # her own text, named by her client's id
    own, _ = await texted(world, "See you at 8", 5)
    react(world.alice, own, "😂")
    assert (await world.twilio.wait_for_messages(6))[5].body == "Reacted 😂 to “See you at 8”"


async def test_a_reaction_to_an_unknown_or_another_contacts_text_is_refused(
    world: World,
) -> None:
    other = await world.twilio.post_inbound(world.inbound_url, OTHER, ALICE_NUMBER, "secret plan")
    assert other[0] == 200
    theirs = await world.alice.expect_message(from_=OTHER_JID, body="secret plan")
    for target in (theirs["id"], "no-such-message"):
        own_id = react(world.alice, target, "👍")  # to the friend: never quote OTHER's text

        def refused(stanza: StanzaBase, own_id: str = own_id) -> bool:
            return (
                isinstance(stanza, Message) and stanza["type"] == "error" and stanza["id"] == own_id
            )

        error = await world.alice.expect(refused)
        assert error["error"]["condition"] == "item-not-found"
        assert "reaction was not sent" in error["error"]["text"]
    assert await sent_after(world, 1, "sentinel") == ["sentinel"]


async def test_reactions_can_be_turned_off_and_on(world: World) -> None:
    dinner = await incoming(world, "Dinner at 7?")
    note = await set_reactions(world.alice, False)
    assert "no longer sent" in note
    react(world.alice, dinner["id"], "👍")
    assert await sent_after(world, 1, "first sentinel") == ["first sentinel"]
    assert "costs" in await set_reactions(world.alice, True)
    react(world.alice, dinner["id"], "👍")
    assert await sent_after(world, 2, "second sentinel") == [
        "Reacted 👍 to “Dinner at 7?”",
        "second sentinel",
    ]


# -- replies, corrections, retractions -----------------------------------------------------------


async def test_a_reply_quotes_the_beginning_of_the_text_it_answers(world: World) -> None:
    dinner = await incoming(world, "Dinner at 7? I booked the Thai place on Main Street")
    fallback = "> Dinner at 7? I booked the Thai place on Main Street\n"
    body = fallback + "Yes, see you there"
    world.alice.send_raw(
        f"<message to='{FRIEND_JID}' type='chat' id='{uuid.uuid4()}'><body>{body}</body>"
        f"<reply xmlns='urn:xmpp:reply:0' to='{FRIEND_JID}' id='{dinner['id']}'/>"
        "<fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:reply:0'>"
        f"<body start='0' end='{len(fallback)}'/></fallback></message>"
    )
    [sent] = await world.twilio.wait_for_messages(1)
    assert sent.body == 'Re: "Dinner at 7? I booked the Thai place..."\nYes, see you there'


async def test_a_correction_is_texted_marked_and_its_receipt_names_it(world: World) -> None:
    first, _ = await texted(world, "See you at 9", 1)
    correction_id = str(uuid.uuid4())
    world.alice.send_raw(
        f"<message to='{FRIEND_JID}' type='chat' id='{correction_id}'><body>See you at 8</body>"
        f"<replace xmlns='urn:xmpp:message-correct:0' id='{first}'/>"
        "<request xmlns='urn:xmpp:receipts'/></message>"
    )
    sent = (await world.twilio.wait_for_messages(2))[1]
    assert sent.body == "Correction: See you at 8"
    assert (await world.twilio.post_status(sent.sid, "delivered"))[0] == 200
    await world.alice.expect(receipt_for(correction_id))
    # a tapback on the corrected text reacts to the message Alice's client shows
    await phone_says(world, "Liked “Correction: See you at 8”")
    assert await reaction_from(world) == (first, ["👍"])


async def test_a_retraction_sends_nothing_and_alice_is_told_plainly(world: World) -> None:
    first, _ = await texted(world, "oops, wrong person", 1)
    world.alice.send_raw(
        f"<message to='{FRIEND_JID}' type='chat' id='{uuid.uuid4()}'>"
        f"<retract xmlns='urn:xmpp:message-retract:1' id='{first}'/>"
        "<fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:message-retract:1'/>"
        "<body>This person attempted to retract a previous message.</body></message>"
    )
    notice = await world.alice.expect_message(from_=SMS)
    assert notice["body"] == (
        "Your text to +1 555-765-4321 cannot be recalled: SMS has no way to take a message "
        "back, so it stays on their phone. Nothing was sent."
    )
    assert await sent_after(world, 2, "sentinel") == ["sentinel"]


# -- ids after a restart -------------------------------------------------------------------------


async def test_reactions_and_replies_find_their_texts_after_a_restart(world: World) -> None:
    dinner = await incoming(world, "Dinner at 7?")
    mine, _ = await texted(world, "See you at 8", 1)
    await world.gateway.arestart()
    react(world.alice, dinner["id"], "👍")
    reply_id = str(uuid.uuid4())
    world.alice.send_raw(
        f"<message to='{FRIEND_JID}' type='chat' id='{reply_id}'><body>Sure</body>"
        f"<reply xmlns='urn:xmpp:reply:0' id='{dinner['id']}'/></message>"
    )
    sent = await world.twilio.wait_for_messages(3)
    assert [m.body for m in sent[1:]] == [
        "Reacted 👍 to “Dinner at 7?”",
        'Re: "Dinner at 7?"\nSure',
    ]
    # and the phone's tapback finds Alice's text sent before the restart
    await phone_says(world, "Liked “See you at 8”")
    assert await reaction_from(world) == (mine, ["👍"])


# -- typing and files ----------------------------------------------------------------------------


async def test_typing_sends_nothing_and_a_shared_file_goes_as_mms(world: World) -> None:
    for state in ("composing", "paused", "active"):
        world.alice.send_raw(
            f"<message to='{FRIEND_JID}' type='chat'>"
            f"<{state} xmlns='http://jabber.org/protocol/chatstates'/></message>"
        )
    url = "https://upload.example.org/share/0f9a/photo.jpg"
    world.alice.send_raw(
        f"<message to='{FRIEND_JID}' type='chat' id='{uuid.uuid4()}'><body>{url}</body>"
        f"<x xmlns='jabber:x:oob'><url>{url}</url></x></message>"
    )
    [sent] = await world.twilio.wait_for_messages(1)
    assert (sent.body, sent.media_urls) == ("", [url])
    assert await sent_after(world, 1, "sentinel") == ["", "sentinel"]
