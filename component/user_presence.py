"""Presence from users: subscriptions to the gateway and its contacts (XEP-0100), probes,
and availability, which a transport may turn into its own (IRC: AWAY)."""

from __future__ import annotations

import logging
from functools import partial
from typing import TYPE_CHECKING

from slixmpp import Presence
from slixmpp.jid import InvalidJID
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from mappings.contacts import ContactMapping
from transports.base import AddressError, UserPresence

if TYPE_CHECKING:
    from component.xmpp import GatewayComponent

log = logging.getLogger(__name__)

SUBSCRIPTION_TYPES = ("subscribe", "subscribed", "unsubscribe", "unsubscribed")


def install(component: GatewayComponent) -> None:
    """Presence events, without slixmpp's roster view of who is online.

    slixmpp files every presence it receives in its roster: a node per sender, one per
    addressee (every room JID a user joins) and an item per pair, kept for as long as the
    component runs. Nothing here reads them (the gateway answers probes and subscriptions
    from its store), and for a gateway they were 1.7 KiB of what each connected user costs.
    Its subscription handlers stay as they were.
    """
    component.remove_handler("Presence")
    component.register_handler(
        Callback(
            "Presence",
            MatchXPath(f"{{{component.default_ns}}}presence"),
            partial(_presence_events, component),
        )
    )
    for shown in ("available", "dnd", "xa", "chat", "away"):
        component.del_event_handler(f"presence_{shown}", component._handle_available)
    component.del_event_handler("presence_unavailable", component._handle_unavailable)
    component.add_event_handler("presence", partial(in_arrival_order, component))


async def in_arrival_order(component: GatewayComponent, pres: Presence) -> None:
    """A user's presences taken in the order they came, in turn with their messages.

    slixmpp runs each handler as a task of its own, and a join awaits the store before it
    reaches IRC: under load, three joins sent at once went out as JOINs in another order (and
    were answered so), and a message sent right after a join could overtake it.
    """
    async with component.in_order.turn(pres["from"].bare):
        await on_presence(component, pres)


def _presence_events(component: GatewayComponent, pres: Presence) -> None:
    """The events slixmpp raises for a presence stanza, the roster left out."""
    try:
        pres["from"], pres["to"]  # parsed first, as slixmpp does: a bad JID goes no further
    except InvalidJID:
        log.info("%s: presence with an invalid JID: %s", component.domain, pres)
        return
    ptype = pres["type"]
    component.event("presence", pres)
    component.event(f"presence_{ptype}", pres)
    if ptype in SUBSCRIPTION_TYPES:
        component.event("changed_subscription", pres)


async def on_presence(component: GatewayComponent, pres: Presence) -> None:
    if component.occupancy.is_room_traffic(pres):
        component.occupancy.on_room_presence(pres)
        return
    ptype = pres["type"]
    if ptype == "error":
        return
    user = pres["from"].bare
    if not component.host.is_allowed(user):
        if ptype in ("subscribe", "probe"):
            component.send_presence(pto=user, pfrom=pres["to"].bare, ptype="unsubscribed")
        return
    if component.muc is not None and await component.muc.handle_presence(pres):
        return
    contact: str | None = None
    if pres["to"].user:
        try:
            contact = component.network.parse_address(pres["to"].user)
        except AddressError:
            return
    if ptype in ("subscribe", "subscribed", "unsubscribe", "unsubscribed"):
        await _subscription(component, pres, user, contact)
    elif ptype == "probe":
        await _answer_probe(component, pres, user, contact)
    elif ptype in ("available", "unavailable") or ptype in ("away", "xa", "dnd", "chat"):
        await _availability(component, pres, user, contact)


async def _subscription(
    component: GatewayComponent, pres: Presence, user: str, contact: str | None
) -> None:
    ptype = pres["type"]
    registered = await component.host.store.registrations.get(component.network.name, user)
    if component.network.requires_registration and registered is None:
        if ptype == "subscribe":
            component.send_presence(pto=user, pfrom=pres["to"].bare, ptype="unsubscribed")
        return
    if ptype == "subscribe":
        component.send_presence(pto=user, pfrom=pres["to"].bare, ptype="subscribed")
        component.send_presence(pto=user, pfrom=pres["to"].bare)
        if contact is not None:
            await component.host.store.contacts.add(
                ContactMapping(component.network.name, user, contact, subscription="both")
            )
            await component.host.store.contacts.update(
                component.network.name, user, contact, subscription="both"
            )
    elif ptype == "unsubscribe" and contact is not None:
        await component.host.store.contacts.remove(component.network.name, user, contact)
        component.send_presence(pto=user, pfrom=pres["to"].bare, ptype="unsubscribed")
    elif ptype == "subscribed" and contact is not None:
        await component.host.store.contacts.update(
            component.network.name, user, contact, subscription="both"
        )


async def _answer_probe(
    component: GatewayComponent, pres: Presence, user: str, contact: str | None
) -> None:
    registered = await component.host.store.registrations.get(component.network.name, user)
    if registered is None and component.network.requires_registration:
        component.send_presence(pto=user, pfrom=pres["to"].bare, ptype="unsubscribed")
        return
    component.send_presence(pto=pres["from"], pfrom=pres["to"].bare)


async def _availability(
    component: GatewayComponent, pres: Presence, user: str, contact: str | None
) -> None:
    available = pres["type"] != "unavailable"
    resources = component.online.setdefault(user, set())
    if available:
        first = not resources
        resources.add(pres["from"].resource)
        if first and contact is None:
            component.send_presence(pto=pres["from"], pfrom=component.domain)
        if first and component.privileged_roster and component.network.roster_contacts:
            await component._keep_roster_names(user)
    else:
        resources.discard(pres["from"].resource)
        if not resources:
            component.online.pop(user, None)
    show = pres["show"] if available else ""
    await component.network.user_presence(
        UserPresence(
            from_jid=str(pres["from"]),
            contact=contact,
            available=available,
            show=show or "",
            status=pres["status"] or "",
        )
    )
