"""WEBIRC: telling the IRC network who each gateway user is, instead of the gateway's IP.

Without it, every user of the gateway comes from the gateway's address: one ban, one
clone limit, one hostname for all. A network that trusts the gateway gives it a WEBIRC
password (ngIRCd ``[WebIRC]``, InspIRCd ``<cgihost type="webirc">``), and the gateway
sends ``WEBIRC password gateway hostname ip`` before registering.

An XMPP user has no IP address of their own that the gateway could honestly give, and
their real client address is not the gateway's to reveal. So each user gets a stable
pseudonymous identity:
- ip: an IPv6 address in the unique-local range fd00::/8, derived from an HMAC of the bare
  JID keyed with the WEBIRC password (stable per user and network, not reversible to the
  JID without the password, never a routable address);
- hostname: the first 12 hex digits of that HMAC, under the user's JID domain
  (``3fa2c1e0b94d.example.org``): operators can ban one user, or ``*.example.org`` for a
  whole XMPP server, as they would ban a host or a domain.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress

GATEWAY_NAME = "portway"


def identity(bare_jid: str, password: str) -> tuple[str, str]:
    """(hostname, ip) that WEBIRC gives for this user on the network with this password."""
    bare = bare_jid.split("/", 1)[0].lower()
    domain = bare.rpartition("@")[2]
    digest = hmac.new(password.encode(), bare.encode(), hashlib.sha256).digest()
    ip = ipaddress.IPv6Address(b"\xfd" + digest[:15])
    return f"{digest.hex()[:12]}.{domain}", str(ip)


def webirc_params(bare_jid: str, password: str) -> tuple[str, ...]:
    """The parameters of the WEBIRC line for this user."""
    hostname, ip = identity(bare_jid, password)
    return (password, GATEWAY_NAME, hostname, ip)
