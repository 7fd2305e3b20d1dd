"""Stanza plugins slixmpp lacks, and XEP-0004 rendering of the transports' forms."""

from __future__ import annotations

from typing import Any

from slixmpp.plugins.xep_0004 import Form as DataForm
from slixmpp.xmlstream import ElementBase

from transports.base import Form

#: slixmpp's ``<error/>`` plugin is in this namespace whatever the stream's
CLIENT_ERROR = "{jabber:client}error"


def errors_in_stream_namespace(stanza: Any) -> Any:
    """An outgoing filter: a stanza's ``<error/>`` in the namespace of the stanza itself.

    slixmpp builds every ``<error/>`` in ``jabber:client``, so on a component stream (whose
    stanzas are in ``jabber:component:accept``) it went out as ``<error
    xmlns='jabber:client'>``, an element the receiving server does not take for the
    stanza's error: RFC 6120 §4.8.3 wants it in the stream's content namespace.
    """
    namespace = getattr(stanza, "namespace", "")
    xml = getattr(stanza, "xml", None)
    if xml is None or not namespace or namespace == "jabber:client":
        return stanza
    for child in xml:
        if child.tag == CLIENT_ERROR:
            child.tag = f"{{{namespace}}}error"
    return stanza


class GatewayQuery(ElementBase):
    """XEP-0100 ``jabber:iq:gateway``: a prompt, and translating an address into a JID."""

    name = "query"
    namespace = "jabber:iq:gateway"
    plugin_attrib = "gateway"
    interfaces = {"desc", "prompt", "jid"}
    sub_interfaces = interfaces


def render_form(form: Form, data_form: DataForm) -> DataForm:
    """Fill a slixmpp data form (type ``form``) from a transport's :class:`Form`."""
    data_form["type"] = "form"
    data_form["title"] = form.title
    data_form["instructions"] = form.instructions
    for item in form.fields:
        options: dict[str, Any] = {
            "ftype": item.type,
            "label": item.label,
            "required": item.required,
        }
        if item.desc:
            options["desc"] = item.desc
        if item.value is not None and item.type != "text-private":
            options["value"] = item.value
        field = data_form.add_field(var=item.var, **options)
        for value, label in item.options:
            field.add_option(label=label, value=value)
    return data_form


def form_values(form: Form, submitted: DataForm) -> dict[str, Any]:
    """The submitted values of a form's fields, typed (booleans as bool), missing ones omitted."""
    values: dict[str, Any] = {}
    submitted_fields = submitted.get_fields()
    for item in form.fields:
        if item.type == "fixed" or item.var not in submitted_fields:
            continue
        value = submitted_fields[item.var].get_value(convert=False)
        if isinstance(value, list):
            value = "\n".join(str(v) for v in value)
        if item.type == "boolean":
            # Typed by our form, not by what the client echoes back (clients omit the type).
            values[item.var] = str(value).strip().lower() in ("1", "true")
        else:
            values[item.var] = value
    return values


def unknown_fields(form: Form, submitted: DataForm) -> list[str]:
    """Submitted fields the form did not offer (``FORM_TYPE`` aside).

    They are refused rather than dropped: a user who sets a field the form withholds (an
    admin-only setting, say) must learn it was not applied, not get "completed".
    """
    offered = {item.var for item in form.fields} | {"FORM_TYPE"}
    return [var for var in submitted.get_fields() if var not in offered]


def missing_required(form: Form, values: dict[str, Any]) -> list[str]:
    return [
        item.label
        for item in form.fields
        if item.required and item.type != "boolean" and not str(values.get(item.var) or "").strip()
    ]
