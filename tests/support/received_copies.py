"""Which messages a user got, from every place a client gets them, and with which ids.

A client sees a message live, from offline storage after a login, or in its archive (MAM).
The same stored message reaching it two ways is one copy: the server's archive id (the
``<stanza-id by='user@domain'/>`` it stamps, or the MAM result id) names it, and real clients
drop it the same way. Two archive ids for one post are two copies the gateway sent. Those
must carry the same ``id``, origin-id and gateway stanza-id, or a client shows both.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field

CLIENT = "{jabber:client}"
SID = "{urn:xmpp:sid:0}"
MAM = "{urn:xmpp:mam:2}"
FORWARD = "{urn:xmpp:forward:0}"
DELAY = "{urn:xmpp:delay}"

#: The ids a client can dedup by: message ``id``, origin-id, the gateway's stanza-id.
Ids = tuple[str | None, str | None, str | None]


@dataclass(frozen=True)
class Copy:
    """One message as the client received it."""

    body: str
    ids: Ids
    #: the server's id for the stored message; None if the server did not archive it
    archive_id: str | None
    #: "live", "offline" (delayed by the user's server) or "archive" (a MAM result)
    source: str


def copy_of(stanza: ET.Element, *, sender: str, user: str) -> Copy | None:
    """The copy a received ``<message/>`` holds, if it is a message from ``sender`` with a body.

    ``sender`` is the bare JID that posts (a hook); ``user`` the receiving bare JID, whose
    server stamps the archive id; the gateway's own stanza-id is the one ``by`` its domain.
    """
    source = "live"
    archive_id: str | None = None
    result = stanza.find(f"{MAM}result")
    if result is not None:
        inner = result.find(f"{FORWARD}forwarded/{CLIENT}message")
        if inner is None:
            return None
        stanza, source, archive_id = inner, "archive", result.get("id")
    if stanza.get("from", "").split("/", 1)[0] != sender:
        return None
    body = stanza.findtext(f"{CLIENT}body")
    if not body:
        return None
    gateway = sender.split("@", 1)[1]
    stanza_id = None
    for tag in stanza.iter(f"{SID}stanza-id"):
        if tag.get("by") == gateway:
            stanza_id = tag.get("id")
        elif tag.get("by") == user and archive_id is None:
            archive_id = tag.get("id")
    user_domain = user.split("@", 1)[1]
    if source == "live" and any(
        delay.get("from") == user_domain for delay in stanza.iter(f"{DELAY}delay")
    ):
        source = "offline"
    origin = stanza.find(f"{SID}origin-id")
    ids = (stanza.get("id"), origin.get("id") if origin is not None else None, stanza_id)
    return Copy(body, ids, archive_id, source)


@dataclass
class Ledger:
    """Copies by body: a test sends each post with a unique body, its marker."""

    #: body -> archive id (or a per-copy key when there is none) -> the copy first seen
    by_body: dict[str, dict[str, Copy]] = field(default_factory=dict)
    #: how many received stanzas came from each source, repeats included
    seen: dict[str, int] = field(default_factory=dict)

    def add(self, copies: Iterable[Copy]) -> None:
        for copy in copies:
            self.seen[copy.source] = self.seen.get(copy.source, 0) + 1
            physical = self.by_body.setdefault(copy.body, {})
            key = copy.archive_id or f"unarchived-{len(physical)}"
            physical.setdefault(key, copy)

    def delivered(self, bodies: Iterable[str]) -> set[str]:
        return {body for body in bodies if body in self.by_body}

    def extra_copies(self) -> int:
        """Copies beyond the first, over all bodies."""
        return sum(len(copies) - 1 for copies in self.by_body.values())

    def copies_of(self, body: str) -> list[Copy]:
        """The distinct copies of one body, the first received first."""
        return list(self.by_body.get(body, {}).values())

    def mismatched_ids(self) -> list[str]:
        """Each later copy whose ids differ from its first copy's: a client shows both."""
        problems: list[str] = []
        for body, copies in self.by_body.items():
            first, *others = copies.values()
            problems.extend(
                f"{body!r}: first copy has {first.ids}, a later one ({other.source}) {other.ids}"
                for other in others
                if other.ids != first.ids
            )
        return problems

    def missing_ids(self) -> list[str]:
        """Each body whose first copy lacks one of the ids a client or archive drops copies by."""
        firsts = {body: next(iter(copies.values())) for body, copies in self.by_body.items()}
        return [
            f"{body!r}: (id, origin-id, stanza-id) is {first.ids}"
            for body, first in firsts.items()
            if None in first.ids
        ]
