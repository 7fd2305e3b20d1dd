"""Email addresses as contact JIDs, and the users' own addresses at the gateway's mail domain.

A contact JID's local part is the XEP-0106-escaped address (``juliet\\40capulet.lit``); the
older ``juliet%capulet.lit`` form is still read, because clients without JID escaping can only
type that. What goes back to XMPP is always the escaped form, so one address never shows up as
two contacts.
"""

from __future__ import annotations

import re
from email.headerregistry import Address

from transports.base import AddressError
from transports.jid_escaping import EscapingError, escape_localpart, unescape_localpart

#: RFC 5321 limits: 64 octets of local part, 254 of path.
MAX_LOCAL_PART = 64
MAX_ADDRESS = 254

# A dot-atom local part (RFC 5322 §3.2.3); quoted local parts are legal but are not worth the
# trouble of carrying through JIDs and SMTP envelopes.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_DOT_ATOM = re.compile(rf"^{_ATEXT}+(\.{_ATEXT}+)*$")
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOSTNAME = re.compile(rf"^{_LABEL}(\.{_LABEL})+$")
# What a user may pick as their own address: plain enough to read out on the phone.
_USER_LOCAL_PART = re.compile(r"^[a-z0-9](?:[a-z0-9._+-]{0,62}[a-z0-9])?$")


def normalise_address(text: str) -> str:
    """Validate an RFC 5322 addr-spec and return it lower-cased; raise :class:`AddressError`.

    Lower case because the XMPP server case-folds JID local parts anyway: keeping both forms
    would make ``Juliet@…`` and ``juliet@…`` two contacts of which only one can be reached.
    """
    if any(char in text for char in "\r\n\0"):
        raise AddressError(f"not an email address: {text!r}")
    text = text.strip()
    if not text:
        raise AddressError(f"not an email address: {text!r}")
    if len(text) > MAX_ADDRESS:
        raise AddressError(f"email address too long: {text[:40]!r}…")
    try:
        parsed = Address(addr_spec=text)
    except Exception:  # headerregistry raises assorted errors on bad input
        raise AddressError(f"not a valid email address: {text!r}") from None
    local, domain = parsed.username, parsed.domain.lower()
    if not _DOT_ATOM.match(local) or len(local) > MAX_LOCAL_PART:
        raise AddressError(f"not a valid email address: {text!r}")
    if not _HOSTNAME.match(domain):
        raise AddressError(f"not a valid mail domain in {text!r}")
    return f"{local.lower()}@{domain}"


def parse_contact(localpart: str) -> str:
    """A contact JID's local part to the email address it names."""
    text = unescape_localpart(localpart)
    if "@" not in text and "%" in text:
        local, _, domain = text.rpartition("%")
        text = f"{local}@{domain}"
    return normalise_address(text)


def format_contact(address: str) -> str:
    """An email address to a contact JID's local part (XEP-0106)."""
    try:
        return escape_localpart(normalise_address(address))
    except EscapingError as exc:
        raise AddressError(str(exc)) from None


def address_from_prompt(text: str) -> str:
    """XEP-0100: what a user typed (``mailto:Juliet@Capulet.lit``) to an address."""
    text = text.strip()
    if text.lower().startswith("mailto:"):
        text = text[len("mailto:") :].split("?", 1)[0]
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1]
    return normalise_address(text)


def check_user_local_part(text: str) -> str:
    """A user's chosen address at the gateway's domain; raise :class:`AddressError` if unfit."""
    local = text.strip().lower()
    if not _USER_LOCAL_PART.match(local) or ".." in local:
        raise AddressError(
            "an address may hold letters, digits and . _ + - (not at either end), "
            f"at most {MAX_LOCAL_PART} characters: {text!r}"
        )
    return local


#: Addresses that act for the domain, which users may not choose for themselves (the admin can
#: still bind them): RFC 2142's network and mail role mailboxes, and the addresses certificate
#: authorities mail to prove control of a domain (CA/B Forum Baseline Requirements 3.2.2.4.4),
#: whose holder could get a certificate for the gateway's mail domain.
ROLE_LOCAL_PARTS = frozenset(
    {
        "abuse",
        "admin",
        "administrator",
        "hostmaster",
        "mailer-daemon",
        "noc",
        "postmaster",
        "root",
        "security",
        "webmaster",
    }
)


def propose_user_local_part(user_jid: str) -> str:
    """The registration form's suggestion: the JID's local part, made fit for an address."""
    node = user_jid.split("@", 1)[0] if "@" in user_jid else ""
    local = re.sub(r"[^a-z0-9._+-]+", ".", unescape_localpart(node).lower())
    local = re.sub(r"\.{2,}", ".", local).strip("._+-")
    return local[:MAX_LOCAL_PART].rstrip("._+-")


def split_recipient(address: str, domain: str) -> str | None:
    """The local part of an envelope recipient at our ``domain``; ``None`` for any other domain."""
    local, at, rcpt_domain = address.strip().strip("<>").rpartition("@")
    if not at or not local or rcpt_domain.lower().rstrip(".") != domain.lower():
        return None
    return local.lower()
