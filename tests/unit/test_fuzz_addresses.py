"""Contact JID local parts and XEP-0100 prompts under fuzzing, for every transport.

A local part arrives in every stanza to a contact; a prompt is whatever a user types into
``jabber:iq:gateway``. Properties, for each transport's ``parse_address`` and
``address_from_prompt``: the only error is :class:`AddressError`; an address accepted makes
a valid JID again (``format_address``) that parses back to the same address; its display
name renders. XEP-0106 escaping round-trips and raises only :class:`EscapingError`.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from slixmpp import JID
from slixmpp.jid import InvalidJID
from support.strategies import assert_renderable, hostile_texts

from component.outgoing import xml_safe
from transports.base import AddressError, Transport
from transports.email import EmailTransport
from transports.email.settings import EmailSettings
from transports.irc import IrcTransport
from transports.irc.settings import IrcSettings
from transports.jid_escaping import EscapingError, escape_localpart, unescape_localpart
from transports.sms import SmsTransport
from transports.sms.settings import SmsSettings
from transports.webhook import WebhookTransport
from transports.webhook.settings import WebhookSettings

FAST = settings(max_examples=50, deadline=None)
_HOST = SimpleNamespace(
    store=None, public_url="http://127.0.0.1:1", is_allowed=lambda _jid: True, domain="gw"
)


def _transports() -> dict[str, Transport]:
    base = {"secret": "s"}
    sms = {**base, "jid": "sms.example.org", "account_sid": "AC" + "0" * 32, "auth_token": "t" * 32}
    host: Any = _HOST
    return {
        "email": EmailTransport(
            EmailSettings.model_validate(
                {
                    **base,
                    "jid": "mail.example.org",
                    "domain": "mail.example.org",
                    "smarthost": {"host": "127.0.0.1", "port": 25},
                }
            ),
            host,
        ),
        "irc": IrcTransport(IrcSettings.model_validate({**base, "jid": "irc.example.org"}), host),
        "irc-fixed": IrcTransport(
            IrcSettings.model_validate(
                {**base, "jid": "irc.example.org", "fixed_server": "irc.example.net"}
            ),
            host,
        ),
        "sms": SmsTransport(SmsSettings.model_validate(sms), host),
        "sms-gb": SmsTransport(SmsSettings.model_validate({**sms, "default_region": "GB"}), host),
        "webhook": WebhookTransport(
            WebhookSettings.model_validate({**base, "jid": "hooks.example.org"}), host
        ),
    }


TRANSPORTS = _transports()

#: Pieces of real addresses, so that fuzzing also reaches the accepting paths.
pieces = st.sampled_from(
    [
        "juliet",
        "Juliet",
        "@",
        "\\40",
        "%",
        "capulet.lit",
        "#chan",
        "&local",
        "irc.libera.chat",
        "+1",
        "555",
        "765-4321",
        "(",
        ")",
        " ",
        ".",
        "mailto:",
        "<",
        ">",
        "\\20",
        "\\5c",
        "\\",
        "-",
        "_",
        "K",  # U+212A, which lower-cases to ASCII "k"
        "\u0130",
        "\uff10",  # a full-width digit
    ]
)
#: What a user can type into a prompt: any text XML carries (a stanza holds nothing else).
typed = st.one_of(
    hostile_texts(40),
    st.lists(st.one_of(pieces, hostile_texts(3)), max_size=8).map("".join),
).map(xml_safe)


def _as_local_part(text: str) -> str | None:
    """The local part the XMPP server hands on for ``text``: nodeprep'ed, if valid at all."""
    try:
        return JID(f"{text}@gw.example.org").user or None
    except (InvalidJID, UnicodeError):
        return None


#: Characters a JID local part may hold, mostly (nodeprep refuses a few more).
_jid_chars = st.characters(
    categories=("L", "N", "Pd", "Pc", "Po", "Ps", "Pe", "Sm", "Sc", "So"),
    exclude_characters=" \"&'/:<>@",
)
#: What arrives as a contact JID's local part: only what is valid in a JID, case-folded.
local_parts = (
    st.lists(st.one_of(pieces, st.text(alphabet=_jid_chars, max_size=3)), max_size=8)
    .map("".join)
    .map(_as_local_part)
    .filter(lambda local: local is not None)
)


def _check_accepted(transport: Transport, address: str) -> None:
    """An accepted address names a contact JID that comes back to the same address."""
    assert isinstance(address, str) and address
    local = transport.format_address(address)
    try:
        jid = JID(f"{local}@{transport.settings.jid}")
    except InvalidJID as exc:  # the component could not even name this contact
        raise AssertionError(f"{address!r} → {local!r} is no JID local part: {exc}") from None
    # JIDs fold case (nodeprep), as IRC does for nicks and channels: the same contact.
    assert transport.parse_address(jid.user).lower() == address.lower()
    assert_renderable("x", nick=transport.display_name(address))


@pytest.mark.parametrize("name", sorted(TRANSPORTS))
@FAST
@given(text=local_parts)
@example(text="juliet\\40capulet.lit")
@example(text="#chan%irc.libera.chat")
@example(text="+15557654321")
def test_a_contact_local_part(name: str, text: str) -> None:
    transport = TRANSPORTS[name]
    try:
        address = transport.parse_address(text)
    except AddressError:
        return
    _check_accepted(transport, address)


@pytest.mark.parametrize("name", sorted(TRANSPORTS))
@FAST
@given(text=typed)
@example(text="mailto:Juliet@Capulet.lit?subject=hi")
@example(text="(555) 765-4321")
@example(text="#chan\ue000")  # a private-use character: nodeprep refuses it
@example(text="#chan\uff10")  # a full-width 0: nodeprep makes it #chan0, another channel
def test_a_gateway_prompt(name: str, text: str) -> None:
    transport = TRANSPORTS[name]
    try:
        address = transport.address_from_prompt(text)
    except AddressError:
        return
    _check_accepted(transport, address)


@FAST
@given(text=hostile_texts(40))
@example(text="c:\\net")
@example(text="\\5c40")
def test_escaping_round_trips(text: str) -> None:
    try:
        escaped = escape_localpart(text)
    except EscapingError:
        assert not text or text[0] == " " or text[-1] == " "
        return
    assert not any(char in escaped for char in " \"&'/:<>@")
    assert unescape_localpart(escaped) == text
