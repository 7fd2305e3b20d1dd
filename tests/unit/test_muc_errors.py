"""Error conditions read from a component's stanzas (jabber:component:accept)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from slixmpp import Iq, Message

from component.muc import error_condition, is_gone

COMPONENT_NS = "jabber:component:accept"


def stanza(kind: type, xml: str) -> object:
    return kind(xml=ET.fromstring(xml))


def test_condition_of_a_component_stanza_error() -> None:
    bounce = stanza(
        Iq,
        f'<iq xmlns="{COMPONENT_NS}" type="error" id="1" from="a@example.org/laptop"'
        ' to="irc.example.org"><error type="cancel"><service-unavailable'
        ' xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/><text'
        ' xmlns="urn:ietf:params:xml:ns:xmpp-stanzas">gone</text></error></iq>',
    )
    assert error_condition(bounce) == "service-unavailable"
    assert is_gone(bounce)


def test_errors_that_do_not_mean_gone() -> None:
    refused = stanza(
        Message,
        f'<message xmlns="{COMPONENT_NS}" type="error"><error type="auth"><forbidden'
        ' xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></message>',
    )
    assert error_condition(refused) == "forbidden"
    assert not is_gone(refused)
    plain = stanza(Message, f'<message xmlns="{COMPONENT_NS}" type="chat"><body>x</body></message>')
    assert error_condition(plain) == ""
    assert not is_gone(plain)
