"""What ``portway run`` imports at start: nothing that only a first SMS needs (issue 14).

The ``twilio`` REST client pulls in ``requests`` and urllib3 (about 5 MiB of the gateway's
start-up memory), and ``phonenumbers`` its tables; a gateway that has sent no SMS yet has no
use for either. They are imported when the first request goes out or the first number is read.
asyncpg is imported only when the database is PostgreSQL.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: what the gateway imports before it runs: the CLI, the gateway and every transport
START = """
import sys
import component.cli, component.gateway
from component.gateway import TRANSPORT_CLASSES, transport_class
for name in TRANSPORT_CLASSES:
    transport_class(name)
print(" ".join(sorted(set(sys.argv[1:]) & set(sys.modules))))
"""
ONLY_WHEN_USED = (
    "twilio.rest",
    "twilio.http",
    "requests",
    "urllib3",
    "phonenumbers",
    "asyncpg",  # only for a PostgreSQL database
    "sqlalchemy",  # no longer used (17 MiB at start when it was)
)


def loaded_at_start(*modules: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", START, *modules],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.split()


def test_the_sms_librarys_rest_client_and_number_tables_wait_for_their_first_use() -> None:
    assert loaded_at_start(*ONLY_WHEN_USED) == []


def test_the_check_can_see_a_module_loaded_at_start() -> None:
    """The probe itself works: what start-up does import is reported."""
    assert loaded_at_start("slixmpp", "twilio.request_validator") == [
        "slixmpp",
        "twilio.request_validator",
    ]
