"""Which of the users' resources in rooms are gone: told by a bounce, or asked after an outage.

If the XMPP server itself went down, the sessions it held ended without a word to the gateway,
and those resources would stay in their rooms for good (their IRC connections with them).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.xmlstream import StanzaBase

from component.room_namespaces import NS_STANZAS

log = logging.getLogger(__name__)

#: Errors that mean a resource is no longer there (the conditions Prosody's MUC kicks on).
GONE_CONDITIONS = frozenset(
    {
        "gone",
        "internal-server-error",
        "item-not-found",
        "jid-malformed",
        "recipient-unavailable",
        "redirect",
        "remote-server-not-found",
        "remote-server-timeout",
        "service-unavailable",
    }
)


#: Checking who is still there after a reattach: questions in flight, and the wait for each.
CHECK_CONCURRENCY = 50
CHECK_TIMEOUT_SECONDS = 30


def error_condition(stanza: StanzaBase) -> str:
    """An error stanza's defined condition.

    Read from the XML: slixmpp's error plugin looks for ``<error/>`` in jabber:client, and
    a component's stanzas are in jabber:component:accept, so ``stanza["error"]`` finds none.
    """
    for child in stanza.xml:
        if child.tag.rpartition("}")[2] == "error":
            for condition in child:
                namespace, _, name = condition.tag[1:].partition("}")
                if namespace == NS_STANZAS and name != "text":
                    return name
    return ""


def is_gone(stanza: StanzaBase) -> bool:
    """Whether an error stanza from a user's resource says that resource is gone."""
    return error_condition(stanza) in GONE_CONDITIONS


async def gone_resources(component: Any, ifrom: str, full_jids: Iterable[str]) -> list[str]:
    """The resources among ``full_jids`` that are gone, asked after the link came back.

    Each one is asked for its disco#info, which every client answers: the server answers
    for a resource that no longer exists (service-unavailable). No answer in time proves
    nothing, and the resource stays.
    """
    limit = asyncio.Semaphore(CHECK_CONCURRENCY)
    gone: list[str] = []

    async def check(full_jid: str) -> None:
        async with limit:
            try:
                await component.plugin["xep_0030"].get_info(
                    jid=full_jid, ifrom=ifrom, timeout=CHECK_TIMEOUT_SECONDS
                )
            except IqError as exc:
                if is_gone(exc.iq):
                    gone.append(full_jid)
            except IqTimeout:
                pass
            except Exception:
                log.exception("checking whether %s is still there failed", full_jid)

    await asyncio.gather(*(check(jid) for jid in full_jids))
    return gone
