"""A user's message as it goes to IRC: the text and tags it puts there, and its echo.

A plain message is its text. A correction, retraction, reaction or reply (``Refers``) is
turned into what the server can carry (refer_forms.py says which form, and why), given
what is known of the earlier message (:class:`Target`, looked up by refers_store.py).
The user's own resources are shown the message as they sent it, with what it does, so
that their client corrects, withdraws, reacts or links one message. Pure: no I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass

from transports.events import Refers
from transports.irc.refer_forms import (
    correction_text,
    reaction_line,
    reply_text,
    retraction_line,
)

#: tags of one line, in order (``+draft/reply`` first, as the IRCv3 examples write it)
Tags = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Outgoing:
    """What one XMPP message puts on IRC, and what the user's own resources see of it."""

    #: the PRIVMSG text (``/me …`` for an ACTION); "" when no line is sent
    text: str
    #: the body shown back to the user's resources
    echo: str
    refers: Refers | None = None
    #: client tags on the first PRIVMSG line
    tags: Tags = ()
    #: TAGMSGs sent before the text (reactions)
    tagmsgs: tuple[Tags, ...] = ()


@dataclass(frozen=True)
class Target:
    """What is known of the earlier message a correction, retraction, reaction or reply
    names."""

    #: its IRC msgid, when the server gave one
    msgid: str | None = None
    #: who wrote it ("" when it is the user, or unknown)
    nick: str = ""
    #: its text (or its beginning), when known
    text: str = ""
    #: it is the user's latest message in that conversation
    last: bool = False


@dataclass(frozen=True)
class Referring:
    """A message doing ``refers``, with what is known of its target: its IRC form is
    decided when it is sent (:meth:`on`), since only then is it known whether the server
    carries client tags (a message may wait for the connection)."""

    body: str
    refers: Refers
    target: Target
    reactions_as_text: bool = True
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()

    def on(self, tags: bool) -> Outgoing:
        return translate(
            self.body,
            self.refers,
            self.target,
            tags=tags,
            reactions_as_text=self.reactions_as_text,
            added=self.added,
            removed=self.removed,
        )


def plain(body: str) -> Outgoing:
    return Outgoing(body, body)


def outgoing(body: str, referring: Referring | None, tags: bool) -> Outgoing:
    """What a message puts on IRC now that the connection says whether tags go through."""
    return referring.on(tags) if referring is not None else plain(body)


def translate(
    body: str,
    refers: Refers | None,
    target: Target,
    *,
    tags: bool,
    reactions_as_text: bool = True,
    added: tuple[str, ...] = (),
    removed: tuple[str, ...] = (),
) -> Outgoing:
    """The IRC form of ``body`` doing ``refers``; ``tags``: the server has message-tags.

    ``added``/``removed`` are the reactions that changed (XEP-0444 sends the whole set,
    IRC one reaction at a time). A reaction with nothing to say on IRC has no text and no
    TAGMSG: it is only shown back to the user's resources.
    """
    if refers is None:
        return plain(body)
    msgid = target.msgid if tags else None
    reply: Tags = (("+draft/reply", msgid),) if msgid else ()
    if refers.kind == "correction":
        return Outgoing(correction_text(body), body, refers)
    if refers.kind == "reply":
        text = body if msgid else reply_text(target.nick, body)
        return Outgoing(text, body, refers, tags=reply)
    if refers.kind == "retraction":
        return Outgoing("/me " + retraction_line(target.last), "", refers, tags=reply)
    if msgid:
        reacts = tuple((*reply, ("+draft/react", emoji)) for emoji in added)
        unreacts = tuple((*reply, ("+draft/unreact", emoji)) for emoji in removed)
        return Outgoing("", "", refers, tagmsgs=reacts + unreacts)
    text = ""
    if added and reactions_as_text:
        text = "/me " + reaction_line(added, target.nick, target.text)
    return Outgoing(text, "", refers)
