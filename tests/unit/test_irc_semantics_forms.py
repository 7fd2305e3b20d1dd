"""Corrections, retractions, reactions and replies as IRC text and tags, both ways (#12).

The forms are pure (refer_forms.py, outgoing.py); the session's side runs on a fake
connection (support.irc_fakes), so each scenario shows the IRC lines written and the
events handed to the component.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest
from support.irc_fakes import USER, Hooks, enter, feed, session

from transports.events import InboundMessage, Refers
from transports.irc import channel_messages, private_messages
from transports.irc.echoes import Echoes
from transports.irc.outgoing import Outgoing, Referring, Target, plain, translate
from transports.irc.refer_forms import (
    beginning,
    correction_text,
    reaction_changes,
    reaction_line,
    reply_text,
    retraction_line,
    substitution,
)
from transports.irc.refers_store import HeardReaction, PrivateEcho, reactions_as_text
from transports.irc.session import ServerSession
from transports.irc.settings import IrcSettings
from transports.irc.transport import IrcTransport
from transports.rooms import RoomMessage

PHONE = f"{USER}/phone"
TAGS = frozenset({"message-tags"})


# -- the text forms -------------------------------------------------------------------------------


def test_a_reply_without_tags_addresses_the_nick_once() -> None:
    assert reply_text("bob", "yes") == "bob: yes"
    assert reply_text("bob", "Bob: yes") == "Bob: yes"  # already addressed
    assert reply_text("", "yes") == "yes"  # the user's own message, or unknown


def test_a_correction_is_the_whole_text_marked_at_its_end() -> None:
    assert correction_text("see you at 6pm ") == "see you at 6pm (edited)"
    assert correction_text("line one\nline two") == "line one\nline two (edited)"


def test_a_reaction_line_quotes_the_beginning_and_names_the_author() -> None:
    long = "the build is broken again on the main branch since this morning"
    assert beginning(long) == "the build is broken again on the main…"
    assert reaction_line(("👍",), "bob", long) == (
        'reacted 👍 to bob: "the build is broken again on the main…"'
    )
    assert reaction_line(("👍", "🎉"), "", "ok") == 'reacted 👍 🎉 to "ok"'
    assert reaction_line(("👍",), "bob", "") == "reacted 👍 to a message of bob"
    assert reaction_line(("👍",), "", "") == "reacted 👍 to a message"


def test_a_retraction_says_which_message_never_its_text() -> None:
    assert retraction_line(True) == "retracted their last message"
    assert retraction_line(False) == "retracted a message"


def test_reaction_changes_between_whole_sets() -> None:
    assert reaction_changes(("👍", "🎉"), ("🎉", "❤️")) == (("❤️",), ("👍",))
    assert reaction_changes((), ()) == ((), ())


@pytest.mark.parametrize(
    ("text", "earlier", "fixed"),
    [
        ("s/5pm/6pm/", "see you at 5pm", "see you at 6pm"),
        ("s/5pm/6pm", "see you at 5pm", "see you at 6pm"),
        ("s/o/0/g", "foo boo", "f00 b00"),
        ("s/o/0/", "foo boo", "f0o boo"),
        ("s/a\\/b/c/", "x a/b", "x c"),
        ("s/.*/x/", "abc", None),  # literal, not a pattern: ".*" is not in the line
        ("s/zzz/y/", "abc", None),
    ],
)
def test_substitutions_are_literal(text: str, earlier: str, fixed: str | None) -> None:
    found = substitution(text)
    assert found is not None
    assert found.applied(earlier) == fixed


@pytest.mark.parametrize("text", ["s//x/", "say/what/now", "s/a/b/c", "s/a/b/gx", "hello"])
def test_other_lines_are_no_substitution(text: str) -> None:
    assert substitution(text) is None


# -- what a message puts on IRC ----------------------------------------------------------------


BOB_LINE = Target(msgid="m1", nick="bob", text="the build is broken")


def test_with_tags_a_reply_is_tagged_and_its_text_untouched() -> None:
    refers = Refers("reply", "m1", quote="the build is broken")
    out = translate("fixed it", refers, BOB_LINE, tags=True)
    assert out == Outgoing("fixed it", "fixed it", refers, tags=(("+draft/reply", "m1"),))
    assert translate("fixed it", refers, BOB_LINE, tags=False) == Outgoing(
        "bob: fixed it", "fixed it", refers
    )
    no_id = Target(nick="bob")
    assert translate("fixed it", refers, no_id, tags=True).text == "bob: fixed it"


def test_with_tags_a_reaction_is_one_tagmsg_per_change() -> None:
    refers = Refers("reaction", "m1", reactions=("🎉", "❤️"))
    out = translate("", refers, BOB_LINE, tags=True, added=("❤️",), removed=("👍",))
    assert out.text == "" and out.echo == "" and out.refers == refers
    assert out.tagmsgs == (
        (("+draft/reply", "m1"), ("+draft/react", "❤️")),
        (("+draft/reply", "m1"), ("+draft/unreact", "👍")),
    )


def test_without_tags_a_reaction_is_a_line_or_nothing_as_the_user_chose() -> None:
    refers = Refers("reaction", "m1", reactions=("👍",))
    out = translate("", refers, BOB_LINE, tags=False, added=("👍",))
    assert out.text == '/me reacted 👍 to bob: "the build is broken"' and out.tagmsgs == ()
    dropped = translate("", refers, BOB_LINE, tags=False, reactions_as_text=False, added=("👍",))
    assert dropped.text == "" and dropped.tagmsgs == ()
    removed_only = translate("", Refers("reaction", "m1"), BOB_LINE, tags=False, removed=("👍",))
    assert removed_only.text == ""


def test_a_correction_and_a_retraction() -> None:
    correction = Refers("correction", "c1")
    out = translate("see you at 6pm", correction, Target(), tags=True)
    assert out == Outgoing("see you at 6pm (edited)", "see you at 6pm", correction)
    retraction = Refers("retraction", "m1")
    last = Target(msgid="m1", last=True)
    assert translate("", retraction, last, tags=False) == Outgoing(
        "/me retracted their last message", "", retraction
    )
    assert translate("", retraction, last, tags=True).tags == (("+draft/reply", "m1"),)
    assert translate("", retraction, Target(), tags=False).text == "/me retracted a message"


def test_echoes_of_a_message_that_refers_show_it_once_whole() -> None:
    echoes = Echoes()
    correction = Refers("correction", "c1")
    echoes.expect("#chan", 2, "x1", "o1", correction, "whole text")
    first, second = echoes.echoed("#chan"), echoes.echoed("#chan")
    assert first is not None and (first.xmpp_id, first.refers, first.echo) == (
        "x1",
        correction,
        "whole text",
    )
    assert second is not None and second.echo is False and second.refers is None
    echoes.expect("#chan", 2, "x2", None, None, "a\nb")  # plain: each line shown as it came
    plain_first, plain_second = echoes.echoed("#chan"), echoes.echoed("#chan")
    assert plain_first is not None and plain_first.echo is None
    assert plain_second is not None and plain_second.echo is None


# -- the session: lines written, events handed over ------------------------------------------


async def in_chan(caps: frozenset[str] = frozenset()) -> tuple[ServerSession, list[str], Hooks]:
    made, conn, hooks = session(caps)
    await enter(made, "#chan", "alice bob")
    conn.sent.clear()
    hooks.events.clear()
    return made, conn.sent, hooks


async def test_a_tagged_reaction_goes_as_tagmsg_and_is_echoed_as_the_whole_set() -> None:
    made, sent, hooks = await in_chan(TAGS)
    refers = Refers("reaction", "m1", reactions=("👍",))
    referring = Referring("", refers, BOB_LINE, added=("👍",))
    await channel_messages.say(made, PHONE, "#chan", "", "r1", None, referring)
    assert sent == ["@+draft/reply=m1;+draft/react=👍 TAGMSG #chan"]
    echo = hooks.of(RoomMessage)[-1]
    assert (echo.nick, echo.body, echo.xmpp_id, echo.refers) == ("alice", "", "r1", refers)


async def test_a_correction_goes_marked_and_is_echoed_with_its_replace() -> None:
    made, sent, hooks = await in_chan()
    refers = Refers("correction", "c1")
    referring = Referring("see you at 6pm", refers, Target())
    await channel_messages.say(made, PHONE, "#chan", "see you at 6pm", "c2", None, referring)
    assert sent == ["PRIVMSG #chan :see you at 6pm (edited)"]
    echo = hooks.of(RoomMessage)[-1]
    assert (echo.body, echo.xmpp_id, echo.refers) == ("see you at 6pm", "c2", refers)


async def test_with_echo_message_the_echo_keeps_the_correction() -> None:
    made, sent, hooks = await in_chan(frozenset({"echo-message"}))
    refers = Refers("correction", "c1")
    referring = Referring("at 6pm\nor 7", refers, Target())
    await channel_messages.say(made, PHONE, "#chan", "at 6pm\nor 7", "c2", None, referring)
    assert sent == ["PRIVMSG #chan :at 6pm", "PRIVMSG #chan :or 7 (edited)"]
    assert hooks.of(RoomMessage) == []  # the server's echoes are shown, not a local copy
    await feed(
        made,
        "@msgid=e1 :alice!~alice@gw.example PRIVMSG #chan :at 6pm",
        "@msgid=e2 :alice!~alice@gw.example PRIVMSG #chan :or 7 (edited)",
    )
    shown = hooks.of(RoomMessage)
    assert len(shown) == 1  # one corrected message, not one per line
    assert (shown[0].body, shown[0].xmpp_id, shown[0].refers) == ("at 6pm\nor 7", "c2", refers)


async def test_a_members_substitution_corrects_their_last_line() -> None:
    made, _sent, hooks = await in_chan()
    await feed(
        made,
        "@msgid=b1 :bob!~bob@h PRIVMSG #chan :see you at 5pm",
        ":carol!~c@h PRIVMSG #chan :s/5pm/6pm/",  # carol said nothing before: plain text
        ":bob!~bob@h PRIVMSG #chan :s/5pm/6pm/",
        ":bob!~bob@h PRIVMSG #chan :s/6pm/7pm",
        ":bob!~bob@h PRIVMSG #chan :s/nothing/here/",
    )
    first, carol, fix, again, miss = hooks.of(RoomMessage)
    assert (first.body, first.stanza_id, first.refers) == ("see you at 5pm", "b1", None)
    assert (carol.body, carol.refers) == ("s/5pm/6pm/", None)
    assert (fix.body, fix.refers) == ("see you at 6pm", Refers("correction", "b1"))
    assert (again.body, again.refers) == ("see you at 7pm", Refers("correction", "b1"))
    assert (miss.body, miss.refers) == ("s/nothing/here/", None)


async def test_a_substitution_without_any_id_names_the_id_the_line_was_given() -> None:
    made, _sent, hooks = await in_chan()
    await feed(
        made, ":bob!~bob@h PRIVMSG #chan :hello wrold", ":bob!~bob@h PRIVMSG #chan :s/wrold/world/"
    )
    line, fix = hooks.of(RoomMessage)
    assert line.xmpp_id and line.stanza_id is None
    assert fix.refers == Refers("correction", line.xmpp_id)


async def test_a_reply_tag_makes_a_reply_in_rooms_and_in_private() -> None:
    made, _sent, hooks = await in_chan(TAGS)
    await feed(
        made,
        "@msgid=b2;+draft/reply=m1 :bob!~bob@h PRIVMSG #chan :agreed",
        "@msgid=b3;+draft/reply=p1 :bob!~bob@h PRIVMSG alice :in private",
        "@+draft/reply=" + "x" * 300 + " :bob!~bob@h PRIVMSG alice :absurd id",
    )
    room = hooks.of(RoomMessage)[-1]
    assert (room.body, room.refers) == ("agreed", Refers("reply", "m1"))
    private, absurd = hooks.of(InboundMessage)
    assert (private.contact, private.remote_id, private.refers) == (
        "bob%irc.example",
        "b3",
        Refers("reply", "p1"),
    )
    assert absurd.refers is None


async def test_react_and_unreact_tagmsgs_are_heard_reactions() -> None:
    made, _sent, hooks = await in_chan(TAGS | {"echo-message"})
    await feed(
        made,
        "@+draft/reply=m1;+draft/react=👍 :bob!~bob@h TAGMSG #chan",
        "@+draft/reply=m1;+draft/unreact=👍 :bob!~bob@h TAGMSG #chan",
        "@+draft/reply=p1;+draft/react=🎉 :bob!~bob@h TAGMSG alice",
        "@+draft/react=👍 :bob!~bob@h TAGMSG #chan",  # no target: nothing
        "@+draft/reply=m1;+draft/react=👍 :alice!~alice@gw.example TAGMSG #chan",  # own
    )
    heard = hooks.of(HeardReaction)
    assert [(h.target, h.emoji, h.removed, h.reactor) for h in heard] == [
        ("m1", "👍", False, "bob%irc.example"),
        ("m1", "👍", True, "bob%irc.example"),
        ("p1", "🎉", False, "bob%irc.example"),
    ]
    assert isinstance(heard[0].message, RoomMessage) and heard[0].message.nick == "bob"
    assert isinstance(heard[2].message, InboundMessage)
    assert heard[2].message.contact == "bob%irc.example"


async def test_private_lines_wait_for_their_echo_to_bring_the_msgid() -> None:
    made, sent, hooks = await in_chan(frozenset({"echo-message", "message-tags"}))
    private_messages.send(made, "bob", "hi bob", "x1", PHONE)
    assert sent == ["PRIVMSG bob :hi bob"]
    await feed(made, "@msgid=e9 :alice!~alice@gw.example PRIVMSG bob :hi bob")
    assert hooks.of(PrivateEcho) == [PrivateEcho(USER, "bob%irc.example", "x1", "e9", "hi bob")]
    # A refused line is never echoed: its 401 forgets it, and the next echo is not given
    # its id.
    private_messages.send(made, "ghost", "anyone?", "x2", PHONE)
    await feed(made, ":irc.example 401 alice ghost :No such nick")
    private_messages.send(made, "ghost", "again", None, PHONE)
    await feed(made, "@msgid=e10 :alice!~alice@gw.example PRIVMSG ghost :again")
    assert len(hooks.of(PrivateEcho)) == 1


def test_reactions_as_text_is_a_server_setting_users_may_be_given() -> None:
    settings = IrcSettings.model_validate(
        {
            "jid": "irc.example.org",
            "secret": "a-component-secret",
            "servers": {"irc.example": {"reactions_as_text": False}},
        }
    )
    assert settings.servers["irc.example"].reactions_as_text is False
    # Not among what users may change unless the admin lists it (user_settable).
    default = IrcSettings.model_validate({"jid": "irc.example.org", "secret": "a-secret-value"})
    assert "reactions_as_text" not in default.user_settable


def test_plain_is_the_body_both_ways() -> None:
    assert plain("hi") == Outgoing("hi", "hi")


async def test_a_user_may_turn_reaction_lines_off_where_the_admin_lets_them() -> None:
    def transport(settable: list[str], stored: dict[str, Any]) -> IrcTransport:
        settings = IrcSettings.model_validate(
            {
                "jid": "irc.example.org",
                "secret": "a-component-secret",
                "servers": {"irc.example": {}},
                "user_settable": settable,
            }
        )
        made = IrcTransport(settings, cast(Any, SimpleNamespace(domain="irc.example.org")))

        async def overrides(_user: str, _server: str) -> dict[str, Any]:
            return stored

        made.overrides = overrides  # type: ignore[method-assign]
        return made

    allowed = transport(["nick", "reactions_as_text"], {"reactions_as_text": False})
    assert await reactions_as_text(allowed, USER, "irc.example") is False
    unset = transport(["nick", "reactions_as_text"], {})
    assert await reactions_as_text(unset, USER, "irc.example") is True
    # Stored before the admin took the setting away: the admin's default holds.
    kept = transport(["nick"], {"reactions_as_text": False})
    assert await reactions_as_text(kept, USER, "irc.example") is True
