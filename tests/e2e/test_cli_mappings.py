"""`portway mappings …` as an admin runs it: the real command line on a real SQLite database.

No XMPP server is needed: the CLI works on the database alone, as it does while the gateway
is stopped for a restore.
"""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path
from typing import Any

from support.gateway import GatewayProcess

from mappings.contacts import ContactMapping
from mappings.hooks import HOOK_MIGRATIONS, Hook, Hooks
from mappings.store import Store

ALICE = "alice@example.org"
BOB = "bob@example.org"
HOOK_SECRET = "user-hook-s3cret-Zq81"
IRC_PASSWORD = "irc-nickserv-pw-7Yx"
SETTINGS: dict[str, Any] = {
    "allowed_domains": ["example.org"],
    "transports": {
        "irc": {"jid": "irc.example.org", "secret": "irc-component-s3cret"},
        "sms": {
            "jid": "sms.example.org",
            "secret": "sms-component-s3cret",
            "account_sid": "AC" + "0123456789abcdef" * 2,
            "auth_token": "twilio-auth-t0ken",
        },
        "email": {
            "jid": "mail.example.org",
            "secret": "mail-component-s3cret",
            "domain": "mail.example.org",
            "smarthost": {"host": "127.0.0.1", "port": 2525},
        },
        "webhook": {"jid": "hooks.example.org", "secret": "hooks-component-s3cret"},
    },
}


def gateway(workdir: Path) -> GatewayProcess:
    """A config and an empty database; the gateway itself is never started."""
    return GatewayProcess(workdir, SETTINGS)


def test_list_says_when_there_is_nothing(tmp_path: Path) -> None:
    empty = gateway(tmp_path / "gw").cli("mappings", "list", "--contacts")
    assert empty.returncode == 0, empty.stderr
    assert empty.stdout == ""
    assert empty.stderr == "no registrations and no contacts\n"
    only_sms = gateway(tmp_path / "gw").cli("mappings", "list", "--transport", "sms")
    assert (only_sms.returncode, only_sms.stderr) == (0, "no registrations with sms\n")


def test_an_unknown_transport_is_an_error_naming_the_known_ones(tmp_path: Path) -> None:
    unknown = gateway(tmp_path / "gw").cli("mappings", "list", "--transport", "fax")
    assert unknown.returncode == 2
    assert "'fax'" in unknown.stderr
    assert "irc, sms, email, webhook" in unknown.stderr
    assert unknown.stdout == ""


def test_add_over_an_existing_binding_needs_replace(tmp_path: Path) -> None:
    gw = gateway(tmp_path / "gw")
    assert gw.cli("mappings", "add", "sms", ALICE, "+15550001111").returncode == 0
    again = gw.cli("mappings", "add", "sms", ALICE, "+15550001111")
    assert again.returncode == 0, again.stderr
    assert "already bound" in again.stdout

    over = gw.cli("mappings", "add", "sms", ALICE, "+15550002222")
    assert over.returncode == 1
    assert over.stderr == (
        f"error: {ALICE} is already bound to +15550001111 on sms;"
        " add --replace to bind +15550002222 instead\n"
    )
    assert "sms\talice@example.org\t+15550001111" in gw.cli("mappings", "list").stdout

    replaced = gw.cli("mappings", "add", "--replace", "sms", ALICE, "+15550002222")
    assert replaced.returncode == 0, replaced.stderr
    listed = gw.cli("mappings", "list").stdout
    assert "sms\talice@example.org\t+15550002222" in listed
    assert "+15550001111" not in listed
    # the old number is free again for another user
    assert gw.cli("mappings", "add", "sms", BOB, "+15550001111").returncode == 0


def test_add_webhook_user_registers_without_an_address(tmp_path: Path) -> None:
    gw = gateway(tmp_path / "gw")
    added = gw.cli("mappings", "add", "webhook", ALICE)
    assert added.returncode == 0, added.stderr
    assert added.stdout == f"registered {ALICE} with webhook (it binds no address)\n"
    assert "webhook\talice@example.org\t-" in gw.cli("mappings", "list").stdout

    with_address = gw.cli("mappings", "add", "webhook", BOB, "bob")
    assert with_address.returncode == 1
    assert with_address.stderr == (
        "error: the webhook transport binds no address to users; register them with"
        f" `portway mappings add webhook {BOB}`\n"
    )
    without = gw.cli("mappings", "add", "email", BOB)
    assert without.returncode == 1
    assert without.stderr == (
        "error: the email transport binds each user to an address of their own:"
        f" `portway mappings add email {BOB} ADDRESS`\n"
    )
    assert BOB not in gw.cli("mappings", "list").stdout


async def _fill(database: Path) -> None:
    """What users make over XMPP: contacts, IRC settings with a password, a hook of their own."""
    store = await Store.open(f"sqlite:///{database}")
    try:
        await store.migrate("webhook", HOOK_MIGRATIONS)
        await store.contacts.add(
            ContactMapping("sms", ALICE, "+15557654321", "Mum", subscription="both")
        )
        await store.contacts.add(ContactMapping("email", BOB, "carol@example.net"))
        await store.settings.put(
            "irc",
            ALICE,
            "server:irc.libera.chat",
            {"nick": "alice_", "password": IRC_PASSWORD, "persistent_rooms": ["#portway"]},
        )
        await Hooks(store).create(
            Hook("deploys", ALICE, HOOK_SECRET, deliver_to=(BOB,), url="https://ci.example.net/x")
        )
    finally:
        await store.close()


def test_export_holds_everything_a_restore_needs(tmp_path: Path) -> None:
    old = gateway(tmp_path / "old")
    assert old.cli("mappings", "add", "sms", ALICE, "+15550001111").returncode == 0
    assert old.cli("mappings", "add", "email", BOB, "bob").returncode == 0
    assert old.cli("mappings", "add", "webhook", ALICE).returncode == 0
    asyncio.run(_fill(old.workdir / "portway.db"))

    dump = tmp_path / "backup.jsonl"
    exported = old.cli("mappings", "export", "-o", str(dump))
    assert exported.returncode == 0, exported.stderr
    assert stat.S_IMODE(dump.stat().st_mode) == 0o600
    records = [json.loads(line) for line in dump.read_text().splitlines()]
    kinds = sorted({record["type"] for record in records})
    assert kinds == ["contact", "hook", "registration", "setting"]
    (hook,) = [r for r in records if r["type"] == "hook"]
    assert hook["secrets"] == {"secret": HOOK_SECRET}
    assert "secret" not in hook
    assert (hook["name"], hook["owner"], hook["deliver_to"]) == ("deploys", ALICE, [BOB])
    (setting,) = [r for r in records if r["type"] == "setting"]
    assert setting["secrets"] == {"password": IRC_PASSWORD}
    assert setting["data"] == {"nick": "alice_", "persistent_rooms": ["#portway"]}
    # secrets appear only under "secrets"
    for record in records:
        public = json.dumps({k: v for k, v in record.items() if k != "secrets"})
        assert HOOK_SECRET not in public and IRC_PASSWORD not in public

    new = gateway(tmp_path / "new")
    imported = new.cli("mappings", "import", str(dump))
    assert imported.returncode == 0, imported.stderr
    assert imported.stderr == f"imported {len(records)} records\n"
    again = new.cli("mappings", "export")
    assert again.returncode == 0, again.stderr
    assert again.stdout == dump.read_text()
    # importing the same file twice changes nothing
    assert new.cli("mappings", "import", str(dump)).returncode == 0
    assert new.cli("mappings", "export").stdout == dump.read_text()


def test_export_overwrites_a_readable_file_as_private(tmp_path: Path) -> None:
    gw = gateway(tmp_path / "gw")
    dump = tmp_path / "backup.jsonl"
    dump.write_text("old, longer content that must go away\n" * 3)
    dump.chmod(0o644)
    assert gw.cli("mappings", "add", "webhook", ALICE).returncode == 0
    assert gw.cli("mappings", "export", "--output", str(dump)).returncode == 0
    assert stat.S_IMODE(dump.stat().st_mode) == 0o600
    assert [json.loads(line)["user_jid"] for line in dump.read_text().splitlines()] == [ALICE]


def test_import_refuses_what_it_cannot_restore(tmp_path: Path) -> None:
    gw = gateway(tmp_path / "gw")
    alice_hook = '{"type": "hook", "name": %s, "owner": "alice@example.org"%s}'
    secret = ', "secrets": {"secret": "s3cret"}'
    cases = {
        '{"type": "hook", "name": "x", "owner": "eve@evil.example", "secrets": {"secret": "s"}}': (
            "line 1: eve@evil.example is not in allowed_domains (example.org)"
        ),
        alice_hook % ('"Bad Name"', secret): "line 1: 'Bad Name' is not a hook name",
        alice_hook % ('"x"', ""): "line 1: the hook x has no secret",
        '{"type": "registration", "transport": "fax", "user_jid": "alice@example.org"}': (
            "line 1: unknown transport 'fax' (known: irc, sms, email, webhook)"
        ),
        '{"type": "setting", "transport": "irc", "user_jid": "alice@example.org"}': (
            "line 1: not an exported record (no 'scope')"
        ),
    }
    for line, problem in cases.items():
        refused = gw.cli("mappings", "import", stdin=line + "\n")
        assert refused.returncode == 1, line
        assert refused.stderr == f"error: {problem}\n", refused.stderr
    assert gw.cli("mappings", "export").stdout == ""

    taken = '{"type": "hook", "name": "x", "owner": "%s", "secrets": {"secret": "s3cret-x"}}\n'
    assert gw.cli("mappings", "import", stdin=taken % ALICE).returncode == 0
    theft = gw.cli("mappings", "import", stdin=taken % BOB)
    assert theft.returncode == 1
    assert theft.stderr == f"error: line 1: the hook x belongs to {ALICE}\n"
