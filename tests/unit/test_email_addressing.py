"""Email addresses as contact JIDs (XEP-0106 and the % form) and users' own addresses."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from transports.base import AddressError
from transports.email import EmailTransport
from transports.email.addressing import (
    address_from_prompt,
    check_user_local_part,
    format_contact,
    normalise_address,
    parse_contact,
    propose_user_local_part,
    split_recipient,
)


@pytest.mark.parametrize(
    ("localpart", "address"),
    [
        (r"juliet\40capulet.lit", "juliet@capulet.lit"),
        ("juliet%capulet.lit", "juliet@capulet.lit"),
        (r"Juliet\40Capulet.LIT", "juliet@capulet.lit"),
        (r"first.last+tag\40mail.example.org", "first.last+tag@mail.example.org"),
        # a % inside the local part of an escaped address is part of the address
        (r"a%b\40c.example", "a%b@c.example"),
        # the % form with a % in the local part: the last % separates the domain
        ("a%b%c.example", "a%b@c.example"),
        (r"o'brien\40example.ie", "o'brien@example.ie"),
    ],
)
def test_contact_jids_name_addresses(localpart: str, address: str) -> None:
    assert parse_contact(localpart) == address


@pytest.mark.parametrize(
    "localpart",
    [
        "juliet",  # no domain at all
        r"juliet\40",  # empty domain
        r"\40capulet.lit",  # empty local part
        r"a\20b\40c.example",  # a space is not an addr-spec
        r"a..b\40c.example",
        r"juliet\40capulet",  # a single-label domain is not a mail domain on the Internet
        r"juliet\40[127.0.0.1]",  # address literals: refused, never a way around relay rules
        r"juliet\40capulet.lit\40evil.example",
        "x" * 65 + r"\40example.org",
        r"juliet\40-capulet.lit",
        "",
    ],
)
def test_invalid_addresses_are_jid_malformed(localpart: str) -> None:
    with pytest.raises(AddressError) as caught:
        parse_contact(localpart)
    assert caught.value.condition == "jid-malformed"


@pytest.mark.parametrize("text", ["a\r\nRCPT TO:<x@y.z>@c.example", "a@b.example\n", "a\0@b.ex"])
def test_line_breaks_never_pass(text: str) -> None:
    with pytest.raises(AddressError):
        normalise_address(text)


def test_addresses_go_back_in_the_escaped_form() -> None:
    assert format_contact("juliet@capulet.lit") == r"juliet\40capulet.lit"
    assert format_contact("Juliet@Capulet.lit") == r"juliet\40capulet.lit"
    assert format_contact("o'brien@example.ie") == r"o\27brien\40example.ie"
    # round trip, whatever form came in
    for localpart in ("juliet%capulet.lit", r"juliet\40capulet.lit"):
        assert format_contact(parse_contact(localpart)) == r"juliet\40capulet.lit"


@pytest.mark.parametrize(
    "typed",
    [
        "juliet@capulet.lit",
        " Juliet@Capulet.lit ",
        "mailto:juliet@capulet.lit?subject=hi",
        "<juliet@capulet.lit>",
    ],
)
def test_gateway_prompt_takes_what_people_type(typed: str) -> None:
    assert address_from_prompt(typed) == "juliet@capulet.lit"


def test_gateway_prompt_refuses_non_addresses() -> None:
    with pytest.raises(AddressError):
        address_from_prompt("Juliet Capulet")


def test_user_local_parts() -> None:
    assert check_user_local_part("Alice") == "alice"
    assert check_user_local_part("a.b-c_d+e") == "a.b-c_d+e"
    for bad in ("", ".alice", "alice.", "al..ice", "al ice", "alice@x", "a" * 65, "é"):
        with pytest.raises(AddressError):
            check_user_local_part(bad)


def test_registration_proposes_the_jid_local_part() -> None:
    assert propose_user_local_part("Alice@example.org") == "alice"
    assert propose_user_local_part(r"bob\20smith@example.org") == "bob.smith"
    assert propose_user_local_part("example.org") == ""


def test_own_address_for_the_admin_cli() -> None:
    settings = SimpleNamespace(domain="mail.example.org")
    assert EmailTransport.own_address(settings, "alice") == "alice"
    assert EmailTransport.own_address(settings, "Alice@Mail.Example.org") == "alice"
    with pytest.raises(AddressError):
        EmailTransport.own_address(settings, "alice@elsewhere.example")
    with pytest.raises(AddressError):
        EmailTransport.own_address(settings, "al ice")


def test_envelope_recipients_at_our_domain_only() -> None:
    assert split_recipient("Alice@Mail.Example.org", "mail.example.org") == "alice"
    assert split_recipient("<alice@mail.example.org>", "mail.example.org") == "alice"
    assert split_recipient("alice@example.org", "mail.example.org") is None
    assert split_recipient("alice@mail.example.org.evil.example", "mail.example.org") is None
    assert split_recipient("mail.example.org", "mail.example.org") is None
