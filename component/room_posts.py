"""Plain room posts, taken without slixmpp's matching of every stanza handler.

Most of what a busy room carries from XMPP to IRC is plain text: a groupchat message with a
body. slixmpp tests every stanza against each of its thirty-odd handlers, a fifth of the
gateway's time on that path; a plain post is recognised here and raised as the "message"
event directly (component/muc.py). Pure: no I/O.
"""

from __future__ import annotations

from slixmpp import Message
from slixmpp.xmlstream import StanzaBase

from component.room_namespaces import NS_CHATSTATES, NS_SID

#: What a plain room post may hold besides its body: an origin-id and a chat state. None
#: of these is asked for by a stanza handler of slixmpp's or ours (tests/unit/test_room_post).
PLAIN_POST_EXTRAS = frozenset(
    {f"{{{NS_SID}}}origin-id"}
    | {
        f"{{{NS_CHATSTATES}}}{state}"
        for state in ("active", "composing", "paused", "inactive", "gone")
    }
)


def is_plain_room_post(stanza: StanzaBase) -> bool:
    """A groupchat message with a body and nothing more than an origin-id or a chat state.

    Of the thirty-odd stanza handlers slixmpp matches every stanza against, such a message
    matches two: "IM", which raises the "message" event that the component takes, and the
    MUC plugin's, which raises events nobody here listens to. Matching was a fifth of the
    gateway's time passing room messages from XMPP to IRC.
    """
    if not isinstance(stanza, Message):
        return False
    xml = stanza.xml
    if xml.get("type") != "groupchat":
        return False
    body = f"{{{stanza.namespace}}}body"
    bodies = 0
    for child in xml:
        if child.tag == body:
            bodies += 1
        elif child.tag not in PLAIN_POST_EXTRAS:
            return False
    return bodies == 1
