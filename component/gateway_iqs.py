"""The iqs by which users find the gateway's contacts and join it: XEP-0100 ``jabber:iq:gateway``
(an address typed in, its JID back) and XEP-0077 in-band registration, which binds through
the same path as the "Register" command (``registration_commands.register_user``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from slixmpp import Iq
from slixmpp.jid import InvalidJID
from slixmpp.plugins.xep_0077.stanza import Register

from component.registration_commands import register_user
from component.stanzas import form_values, missing_required, render_form
from mappings.registrations import Registration
from transports.base import AddressError, Forbidden, Form, GatewayError

if TYPE_CHECKING:
    from component.xmpp import GatewayComponent


async def on_gateway_iq(component: GatewayComponent, iq: Iq) -> None:
    if iq["to"].user:
        component.send_error(iq, GatewayError("ask the gateway itself", "feature-not-implemented"))
        return
    reply = iq.reply()
    if iq["type"] == "get":
        reply["gateway"]["desc"] = component.network.prompt_desc
        reply["gateway"]["prompt"] = component.network.prompt_label
        reply.send()
        return
    if iq["type"] != "set":
        return
    try:
        address = component.network.address_from_prompt(iq["gateway"]["prompt"].strip())
        reply["gateway"]["jid"] = str(component.contact_jid(address))
    except GatewayError as error:
        component.send_error(iq, error)
        return
    except InvalidJID:  # an address no JID can name, whatever the transport let through
        component.send_error(iq, AddressError("no JID can name that address"))
        return
    reply.send()


async def on_register(component: GatewayComponent, iq: Iq) -> None:
    user = iq["from"].bare
    if iq["to"].user:
        component.send_error(iq, GatewayError("register with the gateway itself", "bad-request"))
        return
    if not component.host.is_allowed(user):
        component.send_error(
            iq, Forbidden(f"users of {iq['from'].domain} may not use this gateway")
        )
        return
    current = await component.host.store.registrations.get(component.network.name, user)
    form = component.network.registration_form(user, current)
    if iq["type"] == "get":
        reply = iq.reply()
        reply["register"]["instructions"] = form.instructions
        if current:
            reply["register"]["registered"] = True
        render_form(form, reply["register"]["form"])
        reply.send()
        return
    if iq["type"] != "set":
        return
    if iq["register"]["remove"]:
        await _unregister(component, iq, user, current)
        return
    await _complete(component, iq, user, form)


async def _complete(component: GatewayComponent, iq: Iq, user: str, form: Form) -> None:
    submitted = iq["register"]["form"]
    if submitted.get_fields():
        values = form_values(form, submitted)
    else:  # legacy clients fill the plain fields (username, …)
        values = {
            item.var: iq["register"][item.var]
            for item in form.fields
            if item.var in Register.interfaces and iq["register"][item.var]
        }
    missing = missing_required(form, values)
    if missing:
        component.send_error(
            iq,
            GatewayError(f"please fill in: {', '.join(missing)}", "not-acceptable", "modify"),
        )
        return
    try:
        await register_user(component, user, values, before_subscribe=iq.reply().send)
    except GatewayError as error:
        component.send_error(iq, error)


async def _unregister(
    component: GatewayComponent, iq: Iq, user: str, current: Registration | None
) -> None:
    if current is None:
        component.send_error(iq, GatewayError("you are not registered", "item-not-found"))
        return
    await component.forget_user(user, before_goodbye=iq.reply().send)
