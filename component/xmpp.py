"""One XEP-0114 component per transport: turns stanzas into Transport calls and back.

A reader looking for who handles a stanza should find it here by following plain calls:
``_on_message`` → ``Transport.send``, ``user_presence.on_presence`` → ``Transport.user_presence``,
``gateway_iqs.on_register`` → ``Transport.register``, and :mod:`component.render` for the way back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, Literal, cast

from slixmpp import JID, ComponentXMPP, Iq, Message
from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.jid import InvalidJID
from slixmpp.plugins.xep_0077.stanza import Register
from slixmpp.xmlstream import register_stanza_plugin
from slixmpp.xmlstream.handler import CoroutineCallback
from slixmpp.xmlstream.matcher import StanzaPath

from component import chat_states, gateway_iqs, render, stanzas, user_presence
from component.commands import ContactCommands
from component.core_commands import core_commands
from component.goodbye import ContactsShown
from component.incoming import AckingStream
from component.message_refs import FEATURES as MESSAGE_REF_FEATURES
from component.message_refs import BodilessRefers, refers_of, shared_link
from component.occupancy import RoomOccupancy
from component.ordering import InArrivalOrder
from component.outgoing import OutgoingStream
from component.stanzas import GatewayQuery
from mappings.contacts import ContactMapping
from transports.base import (
    Forbidden,
    GatewayError,
    OutboundMessage,
    RegistrationRequired,
    Transport,
)
from transports.events import Refers, RoomLeave, RoomPost

if TYPE_CHECKING:
    from component.host import Host
    from component.muc import MucRouter

log = logging.getLogger(__name__)

FEATURES = (
    "jid\\20escaping",
    "jabber:iq:gateway",
    "jabber:iq:register",
    "urn:xmpp:receipts",
    "urn:xmpp:sid:0",
    "jabber:x:oob",
    *MESSAGE_REF_FEATURES,
)
#: What slixmpp's plugins announce that the gateway does not do: out-of-band transfer by iq,
#: pubsub (shim), PEP nicknames (+notify), receiving forwarded stanzas. A client that
#: believes disco would try them and fail.
NOT_OFFERED = (
    "jabber:iq:oob",
    "http://jabber.org/protocol/shim",
    "http://jabber.org/protocol/shim#SubID",
    "http://jabber.org/protocol/nick+notify",
    "urn:xmpp:forward:0",
)
#: What only a component with rooms does: MUC, and RSM paging (room lists, room archives)
ROOMS_ONLY = ("http://jabber.org/protocol/muc", "http://jabber.org/protocol/rsm")
VERSION = "0.1.0"
UNSUBSCRIBE_SEQUENCE: tuple[Literal["unsubscribe", "unsubscribed", "unavailable"], ...] = (
    "unsubscribe",
    "unsubscribed",
    "unavailable",
)


class GatewayComponent(AckingStream, OutgoingStream, ComponentXMPP):
    """The XMPP face of one transport."""

    def __init__(self, transport: Transport, host: Host, secret: str) -> None:
        super().__init__(transport.settings.jid, secret)
        self.network = transport  # not "transport": slixmpp uses that for the socket
        self.host = host
        self.domain = transport.settings.jid
        # user bare JID -> resources currently available to us
        self.online: dict[str, set[str]] = {}
        self.privileged_roster = False
        self.muc: MucRouter | None = None
        self.occupancy = RoomOccupancy(self)
        self.contacts_shown = ContactsShown()  # for the goodbye at shutdown (goodbye.py)
        #: each user's stanzas (messages, presences) taken one after another, as they came
        self.in_order = InArrivalOrder()
        # We answer subscriptions and probes ourselves, from the store.
        self.del_event_handler("presence_probe", self._handle_probe)
        self.auto_authorize = None
        self.auto_subscribe = False
        # slixmpp's roster keeps the last presence sent from each JID to each JID, to answer
        # probes with it. We answer probes ourselves, and for a gateway that is a stanza
        # kept per user and per room occupant shown: most of what a connected user costs.
        self.del_filter("out", self.roster._save_last_status)
        self.add_filter("out", stanzas.errors_in_stream_namespace)
        self._register_plugins()
        self._register_handlers()
        if transport.supports_rooms:
            from component.muc import MucRouter

            self.muc = MucRouter(self, cast(Any, transport))
            self.muc.setup()

    # -- setup ---------------------------------------------------------------------------------

    def _register_plugins(self) -> None:
        for plugin in (
            "xep_0030",
            "xep_0004",
            "xep_0050",
            "xep_0199",
            "xep_0092",
            "xep_0184",
            "xep_0066",
            "xep_0203",
            "xep_0172",
            "xep_0359",
            "xep_0356",
            "xep_0045",
            "xep_0313",
            "xep_0297",
        ):
            self.register_plugin(plugin)
        self.plugin["xep_0092"].software_name = "Portway"
        self.plugin["xep_0092"].version = VERSION
        # Receipts are ours to send, when the foreign network confirms delivery.
        self.plugin["xep_0184"].auto_ack = False
        self.plugin["xep_0184"].auto_request = False
        disco = self.plugin["xep_0030"]
        disco.add_identity(
            category="gateway",
            itype=self.network.gateway_type,
            name=self.network.settings.name or f"Portway {self.network.title}",
            jid=JID(self.domain),
        )
        for feature in FEATURES:
            disco.add_feature(feature, jid=JID(self.domain))

        register_stanza_plugin(Iq, GatewayQuery)
        register_stanza_plugin(Iq, Register)
        register_stanza_plugin(Register, self.plugin["xep_0004"].stanza.Form)

    def _register_handlers(self) -> None:
        self.register_handler(
            CoroutineCallback(
                "gateway",
                StanzaPath("iq/gateway"),
                cast(Any, partial(gateway_iqs.on_gateway_iq, self)),
            )
        )
        self.register_handler(
            CoroutineCallback(
                "register",
                StanzaPath("iq/register"),
                cast(Any, partial(gateway_iqs.on_register, self)),
            )
        )
        # slixmpp raises "message" for every message with a body, groupchat included.
        self.add_event_handler("message", self._on_message)
        self.register_handler(
            CoroutineCallback("refers", BodilessRefers(None), cast(Any, self._on_message))
        )
        user_presence.install(self)
        chat_states.install(self)  # bodiless: slixmpp raises no "message" for them
        self.add_event_handler("privileges_advertised", self._on_privileges)
        self.add_event_handler("session_start", self._on_session_start)
        self._commands = [*self.network.commands(), *core_commands(self)]
        ContactCommands(self, self._commands, self._contact_features).install()

    def _contact_features(self, address: str) -> tuple[str, ...]:
        """What a contact's disco#info says beyond its commands: every network carries
        corrections, retractions, reactions and replies in some form (README's table)."""
        rooms = self.muc.contact_features(address) if self.muc is not None else ()
        return (*MESSAGE_REF_FEATURES, *rooms)

    # -- sending helpers ----------------------------------------------------------------------

    def contact_jid(self, address: str | None, resource: str | None = None) -> JID:
        """The JID of a foreign address on this component (the component itself for None)."""
        if address is None:
            return JID(self.domain)
        text = f"{self.network.format_address(address)}@{self.domain}"
        return JID(f"{text}/{resource}" if resource else text)

    def send_error(self, stanza: Any, error: GatewayError) -> None:
        """Answer ``stanza`` with an error stanza built from a transport's GatewayError."""
        if stanza["type"] == "error":
            return
        reply = stanza.reply(clear=False) if isinstance(stanza, Iq) else stanza.reply(clear=True)
        if isinstance(stanza, Message):
            reply["id"] = stanza["id"]
        reply["type"] = "error"
        reply["error"]["type"] = error.error_type
        reply["error"]["condition"] = error.condition
        reply["error"]["text"] = error.text
        reply.send()

    # -- session --------------------------------------------------------------------------------

    async def _on_session_start(self, _event: Any) -> None:
        """Tell registered users we are back, so their clients show the gateway online."""
        # slixmpp's XEP-0050 plugin empties the command list at every session bind.
        for command in self._commands:
            self.plugin["xep_0050"].add_command(
                jid=self.domain,
                node=command.node,
                name=command.name,
                handler=self.host.commands.handler(command),
            )
        # slixmpp's plugins come in as dependencies, and some advertise at connect (MUC's
        # post-init, caps at session bind): what this component does not do is taken back.
        rooms_only = () if self.network.supports_rooms else ROOMS_ONLY
        for feature in (*NOT_OFFERED, *rooms_only):
            self.plugin["xep_0030"].del_feature(jid=JID(self.domain), feature=feature)
        for registration in await self.host.store.registrations.list(self.network.name):
            self.send_presence(pto=registration.user_jid, pfrom=self.domain, ptype="probe")
            self.send_presence(pto=registration.user_jid, pfrom=self.domain)

    def _on_privileges(self, _event: Any) -> None:
        permissions = self.plugin["xep_0356"].granted_privileges
        self.privileged_roster = any(
            str(perm.roster) in ("set", "both") for perm in permissions.values()
        )
        log.info("%s: roster privilege granted: %s", self.domain, self.privileged_roster)

    async def forget_user(self, user: str, before_goodbye: Callable[[], Any] | None = None) -> None:
        """Unregister: the transport lets go, the store forgets, the roster items go away."""
        contacts = await self.host.store.contacts.list(self.network.name, user)
        await self.network.unregistered(user)
        await self.host.store.registrations.remove(self.network.name, user)
        if before_goodbye is not None:
            before_goodbye()
        log.info("%s: %s unregistered", self.domain, user)
        for contact in contacts:
            for ptype in UNSUBSCRIBE_SEQUENCE:
                self.send_presence(pto=user, pfrom=self.contact_jid(contact.address), ptype=ptype)
        for ptype in UNSUBSCRIBE_SEQUENCE:
            self.send_presence(pto=user, pfrom=self.domain, ptype=ptype)
        self.online.pop(user, None)

    # -- messages from users -------------------------------------------------------------------

    async def _on_message(self, msg: Message) -> None:
        async with self.in_order.turn(msg["from"].bare):
            await self._take_message(msg)

    async def _take_message(self, msg: Message) -> None:
        if self.occupancy.is_room_traffic(msg) or (msg["type"] == "groupchat" and not self.muc):
            return  # what rooms our contacts sit in say: not addressed to the gateway
        if msg["type"] == "error":
            log.info("%s: error from %s: %s", self.domain, msg["from"], msg["error"]["condition"])
            return
        user = msg["from"].bare
        if not self.host.is_allowed(user):
            self.send_error(
                msg, Forbidden(f"users of {msg['from'].domain} may not use this gateway")
            )
            return
        if self.muc is not None and await self.muc.handle_message(msg):
            return
        body, refers = refers_of(msg.xml, shared_link(msg.xml, msg["body"]))
        oob_url = msg["oob"]["url"] if msg.get_plugin("oob", check=True) is not None else ""
        if not body and not oob_url and refers is None:
            return  # chat states, receipts, markers: nothing to carry
        if not msg["to"].user:
            self.send_error(
                msg,
                GatewayError(
                    "this is the gateway itself; write to a contact JID, or use ad-hoc commands",
                    "feature-not-implemented",
                ),
            )
            return
        try:
            await self._send_outbound(msg, user, body, oob_url, refers)
        except GatewayError as error:
            self.send_error(msg, error)
        except Exception:  # not taken: the sender must know, and may try again
            log.exception("%s: message %s from %s not taken", self.domain, msg["id"], user)
            self.send_error(
                msg,
                GatewayError(
                    "the gateway could not take this message; please try again",
                    "internal-server-error",
                    "wait",
                ),
            )

    async def _send_outbound(
        self, msg: Message, user: str, body: str, oob_url: str, refers: Refers | None
    ) -> None:
        registrations = self.host.store.registrations
        if (
            self.network.requires_registration
            and await registrations.get(self.network.name, user) is None
        ):
            raise RegistrationRequired(
                f"register with {self.domain} first (in your client: service discovery,"
                " or the command 'Register')"
            )
        contact = self.network.parse_address(msg["to"].user)
        receipt = msg.get_plugin("request_receipt", check=True) is not None and bool(
            msg["request_receipt"]
        )
        message = OutboundMessage(
            user_jid=user,
            from_jid=str(msg["from"]),
            contact=contact,
            body=body,
            xmpp_id=msg["id"] or None,
            thread=msg["thread"] or None,
            subject=msg["subject"] or None,
            oob_urls=(oob_url,) if oob_url else (),
            receipt_requested=receipt,
            message_type=msg["type"] or "normal",
            refers=refers,
        )
        await self.network.send(message)
        await self.host.ensure_contact(user, contact, None)

    # -- contacts the user has not seen yet ----------------------------------------------------

    async def introduce_contact(self, user: str, address: str, nick: str | None) -> None:
        """A new contact wrote: put it in the user's roster (XEP-0356) or ask to subscribe."""
        name = nick or self.network.display_name(address)
        mapping = ContactMapping(self.network.name, user, address, display_name=name)
        if not await self.host.store.contacts.add(mapping):
            return
        jid = self.contact_jid(address)
        if self.privileged_roster:
            try:
                await self.plugin["xep_0356"].set_roster(
                    JID(user),
                    {
                        str(jid): {
                            "name": name,
                            "subscription": "both",
                            "groups": [self.network.title],
                        }
                    },
                )
                await self.host.store.contacts.update(
                    self.network.name, user, address, subscription="both"
                )
                return
            except (IqError, IqTimeout, PermissionError, InvalidJID) as exc:
                log.warning(
                    "%s: roster push for %s failed (%s); asking instead", self.domain, user, exc
                )
        request = self.make_presence(pto=user, pfrom=jid, ptype="subscribe")
        request["nick"] = name
        request.send()

    async def _keep_roster_names(self, user: str) -> None:
        """Copy the names the user gave our contacts in their roster into the mappings.

        Servers do not tell a component when a roster item is renamed, so with roster access
        (XEP-0356) the gateway reads the roster when the user comes online.
        """
        try:
            reply = await self.plugin["xep_0356"].get_roster(JID(user))
        except (IqError, IqTimeout, PermissionError) as exc:
            log.info("%s: cannot read the roster of %s: %s", self.domain, user, exc)
            return
        for jid, item in reply["roster"]["items"].items():
            if jid.domain != self.domain or not jid.user or not item["name"]:
                continue
            try:
                address = self.network.parse_address(jid.user)
            except GatewayError:
                continue
            await self.host.store.contacts.update(
                self.network.name, user, address, display_name=item["name"]
            )

    def render(self, event: Any) -> None:
        """Send the stanzas for an event from the transport (see component/render.py)."""
        if self.muc is not None and self.muc.render(event):
            return
        if isinstance(event, RoomPost):
            self.occupancy.post(event)
        elif isinstance(event, RoomLeave):
            self.occupancy.leave(event)
        else:
            render.send_event(self, event)
