"""Invitations to rooms, both ways.

From the user: a mediated invitation (XEP-0045 §7.8.2, sent to the room) or a direct one
(XEP-0249, sent to the contact) becomes ``RoomService.invite``. The foreign side may refuse
it later, as a :class:`RoomError` with ``on="invite"``, which names no stanza: it comes back
as an error answering the user's last invitation to that room, which is kept here.

To the user: see :meth:`Invitations.render`.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from slixmpp import JID, Message
from slixmpp.jid import InvalidJID

from component.room_namespaces import NS_CONFERENCE, NS_MUC_USER
from component.room_render import message, send_error
from transports.base import GatewayError
from transports.rooms import RoomError, RoomInvite

if TYPE_CHECKING:
    from component.muc import MucRouter


@runtime_checkable
class DirectInvitations(Protocol):
    """A room service that says which of its contacts take XEP-0249 invitations (disco)."""

    def takes_invitations(self, address: str) -> bool:
        """Whether an invitation sent to this contact's JID can reach it (an IRC nick)."""


_MUC_USER_X = f"{{{NS_MUC_USER}}}x"
_MUC_INVITE = f"{{{NS_MUC_USER}}}invite"
_CONFERENCE_X = f"{{{NS_CONFERENCE}}}x"


def is_invitation(msg: Message) -> bool:
    """A mediated (muc#user ``<invite/>``) or direct (jabber:x:conference) invitation.

    A loop over the children rather than ElementPath, which compiles and walks a path for
    each call: this runs for every message to a room."""
    for child in msg.xml:
        if child.tag == _CONFERENCE_X:
            return True
        if child.tag == _MUC_USER_X and child.find(_MUC_INVITE) is not None:
            return True
    return False


class Invitations:
    """The user's invitations out, and the foreign side's in, for one MUC router."""

    def __init__(self, router: MucRouter) -> None:
        self.router = router
        #: (bare JID, room) → (full JID, JID it was sent to, id) of the user's last invitation
        #: there, for the foreign side's refusal, which comes later and names no stanza
        self.last: dict[tuple[str, str], tuple[str, str, str]] = {}

    def contact_features(self, address: str) -> tuple[str, ...]:
        """What a contact's disco#info adds for rooms: XEP-0249, where it can be invited."""
        rooms = self.router.rooms
        if isinstance(rooms, DirectInvitations) and rooms.takes_invitations(address):
            return (NS_CONFERENCE,)
        return ()

    # -- from the user -------------------------------------------------------------------------

    async def on_mediated(self, msg: Message) -> None:
        """XEP-0045 §7.8.2: ``<x muc#user><invite to='nick%server@gw'/></x>`` to the room."""
        router = self.router
        if not router.allowed(msg):
            return
        try:
            room = router.room_of(msg["to"])
            if room is None or msg["to"].resource:
                raise GatewayError(
                    "send a mediated invitation to the room's bare JID", "bad-request", "modify"
                )
            for invite in msg.xml.iterfind(f"{{{NS_MUC_USER}}}x/{{{NS_MUC_USER}}}invite"):
                invitee = self._invitee(invite.get("to", ""), room)
                reason = invite.findtext(f"{{{NS_MUC_USER}}}reason") or ""
                await self._invite(msg, room, invitee, reason)
        except GatewayError as exc:
            router.error_message(msg, exc.condition, exc.text, exc.error_type)

    async def on_direct(self, msg: Message) -> None:
        """XEP-0249: ``<x xmlns='jabber:x:conference' jid='#chan%server@gw'/>`` to the contact."""
        if msg.xml.find(f"{{{NS_MUC_USER}}}x/{{{NS_MUC_USER}}}invite") is not None:
            return  # a mediated one with the legacy element besides: taken as mediated
        router = self.router
        if not router.allowed(msg):
            return
        x = msg.xml.find(f"{{{NS_CONFERENCE}}}x")
        to = msg["to"]
        try:
            if x is None or to.resource or not to.user or router.room_of(to) is not None:
                raise GatewayError(
                    "send a direct invitation to the bare JID of a user "
                    f"(nick%server@{router.domain})",
                    "bad-request",
                    "modify",
                )
            text = x.get("jid", "")
            room = router.room_of(_jid(text))
            if room is None:
                title = router.component.network.title
                raise GatewayError(
                    f"{text or 'no room'} is not a room of {router.domain}; "
                    f"an {title} user can only be invited to an {title} room",
                    "not-acceptable",
                )
            await self._invite(msg, room, to.user, x.get("reason", ""))
        except GatewayError as exc:
            router.error_message(msg, exc.condition, exc.text, exc.error_type)

    def _invitee(self, text: str, room: str) -> str:
        """The local part of the JID a mediated invitation names: a contact of this gateway.

        A bare nick (``to='bob'``, as biboumi takes it, and as a user types it in a room)
        names that nick on the room's own server.
        """
        domain = self.router.domain
        text = text.strip()
        if text and not any(c in text for c in "@/%"):
            server = room.rpartition("%")[2]
            return self.router.rooms.format_room(f"{text}%{server}")
        jid = _jid(text)
        if jid.domain != domain:
            raise GatewayError(
                f"{jid} is not on {domain}: this room can only invite its own network's "
                f"users (nick%server@{domain}); invite XMPP users directly (XEP-0249)",
                "feature-not-implemented",
            )
        if not jid.user or jid.resource:
            raise GatewayError(
                f"invite a user by their bare JID (nick%server@{domain})",
                "jid-malformed",
                "modify",
            )
        return jid.user

    async def _invite(self, msg: Message, room: str, invitee: str, reason: str) -> None:
        await self.router.rooms.invite(str(msg["from"]), room, invitee, reason)
        key = (msg["from"].bare, room)
        if msg["id"]:
            self.last[key] = (str(msg["from"]), str(msg["to"].bare), msg["id"])
        else:
            self.last.pop(key, None)  # a refusal must not answer an older invitation

    # -- to the user ---------------------------------------------------------------------------

    def render(self, event: RoomInvite) -> None:
        """A foreign user invites the user: a mediated invitation (XEP-0045 §7.8.2).

        Mediated, from the room, rather than direct (XEP-0249) from the inviter's JID, and
        not both:
        - the invitation comes from the very JID the client will join, known as a room; a
          direct one would come from ``nick%server@gw``, a stranger's JID, which servers and
          clients that filter messages from strangers may drop;
        - biboumi does the same, so users and clients that know it see what they expect;
        - both at once would show two prompts for one invitation in clients that take both.
        ``<invite from>`` is the inviter as an occupant, ``room/inviter``, as biboumi writes
        it (its own scenarios expect it), not the inviter's contact JID.
        It goes to the bare JID: every client of the user can take it, and the XMPP server
        keeps it offline when none is connected (a persistent room stays joined meanwhile).
        """
        room = self.router.room_jid(event.room)
        msg = message(self.router, event.user_jid, "", room, mtype="normal")
        msg["id"] = uuid.uuid4().hex
        x = ET.SubElement(msg.xml, f"{{{NS_MUC_USER}}}x")
        invite = ET.SubElement(x, f"{{{NS_MUC_USER}}}invite")
        invite.set("from", self.router.room_jid(event.room, event.inviter))
        if event.reason:
            ET.SubElement(invite, f"{{{NS_MUC_USER}}}reason").text = event.reason
        name = event.room.rpartition("%")[0] or event.room
        msg["body"] = f"{event.inviter} invites you to {name}: {room}"
        msg.send()

    def render_refusal(self, event: RoomError) -> None:
        """The foreign side refused an invitation: an error answering the user's last one.

        The refusal names the invitee and the room, not the stanza; the last invitation the
        user sent there is the one it answers (they come back within a round trip).
        """
        sent = self.last.pop((event.user_jid, event.room), None)
        to, sender, msg_id = sent or (event.user_jid, self.router.room_jid(event.room), "")
        msg = self.router.component.make_message(mto=to, mfrom=sender, mtype="error")
        if msg_id:
            msg["id"] = msg_id
        send_error(msg, event)


def _jid(text: str) -> JID:
    try:
        jid = JID(text)
    except InvalidJID:
        jid = JID()
    if not jid.domain:
        raise GatewayError(f"not a JID: {text!r}", "jid-malformed", "modify")
    return jid
