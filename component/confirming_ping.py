"""The confirming ping: a ping after a batch of stored events, whose answer confirms them.

A stream is processed in order, so the answer to the ping means the server has taken every
stanza before it. With several connections for one component (ejabberd) the server may hand
the answer to another process, so the rows are confirmed by whichever process hears it, and
the one waiting also looks at the store. Kept apart from host.py, which decides what to send
and when; this is only how one ping is sent and its answer heard.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING
from xml.sax.saxutils import quoteattr

from slixmpp import Iq
from slixmpp.xmlstream import StanzaBase

from component.group_commit import CONFIRM_PREFIX

if TYPE_CHECKING:
    from component.xmpp import GatewayComponent
    from mappings.store import Store

log = logging.getLogger(__name__)

CONFIRM_TIMEOUT_SECONDS = 15.0
CONFIRM_POLL_SECONDS = 0.25


class ConfirmingPings:
    """The pings of one transport's host waiting for their answer, and the answers heard."""

    def __init__(self, store: Store, confirm_soon: Callable[[str], None]) -> None:
        self._store = store
        #: confirm the rows of a ping id (the group commit writes it with the next batch)
        self._confirm_soon = confirm_soon
        self._waiting: dict[str, asyncio.Future[None]] = {}

    async def ping_and_wait(
        self,
        component: GatewayComponent,
        sender: str,
        domain: str,
        confirm_id: str,
        connected: Callable[[], bool],
    ) -> bool:
        """Ping ``domain`` from ``sender``; True once the answer (or its confirmation) is in.

        False when none came in time or the component was detached (``connected``).
        """
        if not connected():
            return False
        answered: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting[confirm_id] = answered
        # no waiter of slixmpp's: the answer may reach another process
        component.send(ping_text(sender, domain, confirm_id))
        deadline = asyncio.get_running_loop().time() + CONFIRM_TIMEOUT_SECONDS
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(answered), CONFIRM_POLL_SECONDS)
                if answered.done():
                    self._confirm_soon(confirm_id)
                    return True
                if not await self._store.inbound.unconfirmed(confirm_id):
                    return True  # another process got the answer and confirmed
                if asyncio.get_running_loop().time() > deadline or not connected():
                    log.warning(
                        "%s: no answer from %s; the batch will be sent again", sender, domain
                    )
                    return False
        finally:
            self._waiting.pop(confirm_id, None)

    def on_answer(self, stanza: StanzaBase) -> StanzaBase | None:
        """Incoming filter: answers to drain pings, ours or another process's."""
        if (
            not isinstance(stanza, Iq)
            or stanza["type"] not in ("result", "error")
            or not stanza["id"].startswith(CONFIRM_PREFIX)
        ):
            return stanza
        waiting = self._waiting.get(stanza["id"])
        if waiting is not None:
            if not waiting.done():
                waiting.set_result(None)
        else:
            self._confirm_soon(stanza["id"])
        return None  # an error answer confirms too: the server processed what came before


def ping_text(sender: str, server: str, ping_id: str) -> str:
    """The confirming ping (XEP-0199), written as text: built as slixmpp stanza objects and
    serialised, it was 4% of the gateway's time under a webhook burst (one per batch)."""
    return (
        f"<iq type='get' id={quoteattr(ping_id)} to={quoteattr(server)}"
        f" from={quoteattr(sender)}><ping xmlns='urn:xmpp:ping'/></iq>"
    )
