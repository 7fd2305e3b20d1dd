"""What users are told when the gateway stops (SIGTERM): rooms closed, contacts and the
gateway offline.

In two steps, around the transports' own stop:
1. :func:`leave_rooms`, before the transports stop: each resource in a room gets an
   unavailable self-presence with status 332 (XEP-0045: the service is shutting down), and
   room presences the transports send while closing (IRC's quits and parts) are dropped:
   the client has just been told the whole room is gone, and "bob left" after that would
   only confuse it. Without this, a client kept believing it was joined after the restart,
   and its messages failed until the user closed the window.
2. :func:`say_goodbye`, when the link closes: unavailable from every contact that was
   shown available (:class:`ContactsShown`), and from the gateway itself to every
   registered or online user.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING

from component.room_namespaces import NS_MUC_USER
from transports.events import ContactPresence

if TYPE_CHECKING:
    from component.muc import MucRouter
    from component.xmpp import GatewayComponent

SHUTDOWN_TEXT = "The gateway is shutting down"


class ContactsShown:
    """Which contacts each user was last shown available, to say goodbye for them."""

    def __init__(self) -> None:
        self._shown: dict[str, set[str | None]] = {}

    def note(self, event: ContactPresence) -> None:
        if event.available:
            self._shown.setdefault(event.user_jid, set()).add(event.contact)
        else:
            contacts = self._shown.get(event.user_jid)
            if contacts is not None:
                contacts.discard(event.contact)
                if not contacts:
                    del self._shown[event.user_jid]

    def take(self) -> dict[str, set[str | None]]:
        shown, self._shown = self._shown, {}
        return shown


def leave_rooms(router: MucRouter) -> None:
    """Step 1: every joined resource out of its rooms (332); later room presences dropped."""
    router.closing = True
    for (full_jid, room), nick in sorted(router.joined.items()):
        pres = router.component.make_presence(
            pto=full_jid, pfrom=router.room_jid(room, nick), ptype="unavailable"
        )
        pres["status"] = SHUTDOWN_TEXT
        x = ET.SubElement(pres.xml, f"{{{NS_MUC_USER}}}x")
        item = ET.SubElement(x, f"{{{NS_MUC_USER}}}item")
        item.set("affiliation", "none")
        item.set("role", "none")
        for code in ("110", "332"):
            ET.SubElement(x, f"{{{NS_MUC_USER}}}status").set("code", code)
        pres.send()
        router.history.release((full_jid, room))
    router.joined.clear()
    router.members.clear()


async def say_goodbye(component: GatewayComponent) -> None:
    """Step 2: contacts shown available, then the gateway, go offline for each user."""
    for user, contacts in sorted(component.contacts_shown.take().items()):
        for contact in sorted(c for c in contacts if c is not None):
            component.send_presence(
                pto=user, pfrom=component.contact_jid(contact), ptype="unavailable"
            )
    registered = await component.host.store.registrations.list(component.network.name)
    users = {registration.user_jid for registration in registered} | set(component.online)
    for user in sorted(users):
        component.send_presence(pto=user, pfrom=component.domain, ptype="unavailable")
