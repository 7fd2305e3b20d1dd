"""Phone numbers as SMS contacts: normalisation, short codes, reasons, display names."""

from __future__ import annotations

import pytest

from transports.base import AddressError
from transports.sms.numbers import format_for_people, is_short_code, normalise_number


@pytest.mark.parametrize(
    ("typed", "region", "expected"),
    [
        ("+15557654321", "US", "+15557654321"),
        ("(555) 765-4321", "US", "+15557654321"),
        ("555.765.4321", "US", "+15557654321"),
        ("1-555-765-4321", "US", "+15557654321"),
        (" +1 555 765 4321 ", "US", "+15557654321"),
        ("020 7183 8750", "GB", "+442071838750"),
        ("+44 20 7183 8750", "US", "+442071838750"),
        ("06 12 34 56 78", "FR", "+33612345678"),
        ("12345", "US", "12345"),
        ("898287", "GB", "898287"),
        ("911", "US", "911"),
    ],
)
def test_numbers_are_normalised(typed: str, region: str, expected: str) -> None:
    assert normalise_number(typed, region) == expected


@pytest.mark.parametrize(
    ("typed", "reason"),
    [
        ("", "No phone number given"),
        ("   ", "No phone number given"),
        ("alice", "is not a phone number"),
        ("+1555", "too short"),
        ("+1 555 765 4321 99999", "too long"),
        ("+999123456", "country code does not exist"),
        ("5551234", "add the area code"),
        ("+1-555-CALL-NOW", "is not a phone number"),
        ("12", "too short"),
        ("+15557654321;drop", "is not a phone number"),
    ],
)
def test_bad_numbers_say_why(typed: str, reason: str) -> None:
    with pytest.raises(AddressError, match=reason) as caught:
        normalise_number(typed, "US")
    assert caught.value.condition == "jid-malformed"


def test_the_region_decides_what_a_local_number_means() -> None:
    assert normalise_number("020 7183 8750", "GB") == "+442071838750"
    with pytest.raises(AddressError):
        normalise_number("020 7183 8750", "US")


def test_short_codes() -> None:
    assert is_short_code("12345")
    assert not is_short_code("+12345")
    assert not is_short_code("1234567")


@pytest.mark.parametrize(
    ("address", "shown"),
    [
        ("+15557654321", "+1 555-765-4321"),
        ("+442071838750", "+44 20 7183 8750"),
        ("12345", "12345"),
        ("+999", "+999"),
    ],
)
def test_display_names_are_formatted_for_people(address: str, shown: str) -> None:
    assert format_for_people(address) == shown
