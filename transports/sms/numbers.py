"""Phone numbers as SMS contacts: what a user may type, what Twilio reports, what people read.

Everything here is pure, so the rules (local numbers take the configured default region, short
codes stay as Twilio reports them, a bad number says why) are unit-tested without a network.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from transports.base import AddressError

if TYPE_CHECKING:
    from phonenumbers import NumberParseException

# ``phonenumbers`` is imported where a number is first read, not when the gateway starts: its
# module tables cost memory that a gateway sending no SMS yet has no use for.

#: Short codes are 3 to 6 digits in the countries Twilio serves; longer digit strings are
#: local numbers missing their area code, and guessing would text a stranger.
_SHORT_CODE = re.compile(r"^[0-9]{3,6}$")
#: What people put around the digits of a number they type: spaces, dots, dashes, parentheses.
_PUNCTUATION = re.compile(r"[\s().\-/]")


def is_short_code(address: str) -> bool:
    return bool(_SHORT_CODE.match(address))


def normalise_number(text: str, default_region: str) -> str:
    """Turn a typed or reported number into ``+E164``, or keep a short code as it is.

    Raises :class:`AddressError` (``jid-malformed``) saying what is wrong with the number.
    """
    typed = text.strip()
    if not typed:
        raise AddressError("No phone number given.")
    compact = _PUNCTUATION.sub("", typed)
    if is_short_code(compact):
        return compact
    if not re.fullmatch(r"\+?[0-9]+", compact):
        raise AddressError(
            f"{typed!r} is not a phone number: use digits, with +country code or in "
            f"{default_region} local form."
        )
    import phonenumbers
    from phonenumbers import NumberParseException, PhoneNumberFormat, ValidationResult

    try:
        number = phonenumbers.parse(compact, default_region)
    except NumberParseException as exc:
        raise AddressError(f"{typed!r} is not a phone number: {_parse_reason(exc)}.") from None
    verdict = phonenumbers.is_possible_number_with_reason(number)
    if verdict != ValidationResult.IS_POSSIBLE:
        reasons = {
            ValidationResult.INVALID_COUNTRY_CODE: "its country code does not exist",
            ValidationResult.TOO_SHORT: "it is too short",
            ValidationResult.TOO_LONG: "it is too long",
            ValidationResult.INVALID_LENGTH: "it has the wrong number of digits for its country",
            ValidationResult.IS_POSSIBLE_LOCAL_ONLY: "it is a local number: add the area code",
        }
        reason = reasons.get(verdict, "it is not a possible number")
        raise AddressError(f"{typed!r} is not a valid phone number: {reason}.")
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def format_for_people(address: str) -> str:
    """``+15557654321`` → ``+1 555-765-4321``; short codes and oddities stay as they are."""
    if not address.startswith("+"):
        return address
    import phonenumbers
    from phonenumbers import NumberParseException, PhoneNumberFormat

    try:
        number = phonenumbers.parse(address, None)
    except NumberParseException:
        return address
    return phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)


def _parse_reason(exc: NumberParseException) -> str:
    from phonenumbers import NumberParseException

    reasons = {
        NumberParseException.INVALID_COUNTRY_CODE: "its country code does not exist",
        NumberParseException.NOT_A_NUMBER: "it does not look like a number",
        NumberParseException.TOO_SHORT_AFTER_IDD: "it is too short after the international prefix",
        NumberParseException.TOO_SHORT_NSN: "it is too short",
        NumberParseException.TOO_LONG: "it is too long",
    }
    return reasons.get(exc.error_type, "it cannot be read as a number")
