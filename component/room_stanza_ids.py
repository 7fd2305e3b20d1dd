"""Stanza ids (XEP-0359) that other entities put on a user's room message, kept on its echo.

A message a client sends to a room may carry ``<stanza-id by=…/>`` from other entities (its
server's archive, say). XEP-0359 §3.2 lets only the entity named by ``by`` strip those, so
the copy the room sends back keeps them; one that claims to be by the room is not ours and
is dropped (§3.1). The transport carries the message's ids, not its elements, so they are
kept here, by the client's id, until the echo, for at most :data:`KEPT` messages.
"""

from __future__ import annotations

from collections import OrderedDict

from slixmpp import Message

from component.room_namespaces import NS_SID

#: Messages whose foreign stanza ids wait for their echo (the oldest are forgotten first)
KEPT = 1000


class ForeignStanzaIds:
    def __init__(self) -> None:
        self._kept: OrderedDict[tuple[str, str], list[tuple[str, str]]] = OrderedDict()

    def remember(self, msg: Message, room_jid: str) -> None:
        """The stanza ids of ``msg`` set by entities other than the room, by its id."""
        key_id = msg["id"]
        if not key_id:
            return
        ids = [
            (sid.get("id", ""), sid.get("by", ""))
            for sid in msg.xml.iterfind(f"{{{NS_SID}}}stanza-id")
            if sid.get("id") and sid.get("by") and sid.get("by") != room_jid
        ]
        if ids:
            self._kept[(msg["from"].bare, key_id)] = ids
            while len(self._kept) > KEPT:
                self._kept.popitem(last=False)

    def take(self, user_jid: str, xmpp_id: str | None) -> list[tuple[str, str]]:
        """The foreign ids of the user's message with this id (once: its echo)."""
        if not xmpp_id:
            return []
        return self._kept.pop((user_jid, xmpp_id), [])
