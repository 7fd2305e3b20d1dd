"""What the server's numeric replies mean to a session: join refusals, and lines not shown.

Kept apart from the session so that its handlers read as the protocol's flow, not tables.
"""

from __future__ import annotations

#: Join errors → XMPP error condition.
JOIN_ERRORS = {
    "403": "item-not-found",
    "405": "resource-constraint",
    "437": "resource-constraint",
    "471": "service-unavailable",
    "473": "registration-required",
    "474": "forbidden",
    "475": "not-authorized",
    "476": "jid-malformed",
    "477": "registration-required",
    "479": "jid-malformed",
}
#: Numerics of the connection burst and of things handled elsewhere: not shown to the user.
# fmt: off
QUIET_NUMERICS = frozenset((
    "001", "002", "003", "004", "005", "042", "250", "251", "252", "253", "254", "255",
    "265", "266", "301", "305", "306", "331", "332", "333", "353", "366", "372", "375",
    "376", "396", "422", "900", "903",
))
# fmt: on
