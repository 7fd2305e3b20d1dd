"""Retention: which rows each horizon forgets, which it keeps, and the schedule that runs it.

On SQLite and on a real PostgreSQL, as tests/unit/test_store.py.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from component.config import ConfigError, parse_config
from component.metrics import Metrics
from component.retention import DAY, RetentionSettings, keep_pruning, prune_once
from mappings import retention
from mappings.archive import RoomArchive
from mappings.hooks import HOOK_MIGRATIONS
from mappings.media import MediaFiles
from mappings.message_ids import MessageIdMapping
from mappings.sms_messages import SentSms, SmsMessages
from mappings.store import Store
from transports.email.mail_headers import MailHeaderLog, MailHeaders

NOW = time.time()
OLD = NOW - 10 * DAY
RECENT = NOW - 0.5 * DAY
#: every horizon a day: OLD rows go, RECENT rows stay
ONE_DAY = RetentionSettings(
    outbox_days=1, message_ids_days=1, archive_days=1, inbound_days=1, interval_minutes=1
)


def user() -> str:
    """A user of this test alone: the PostgreSQL database is shared by the session."""
    return f"u{uuid.uuid4().hex[:12]}@example.org"


async def remaining(store: Store, table: str, user_jid: str, column: str = "user_jid") -> int:
    row = await store.fetch_one(f"SELECT COUNT(*) FROM {table} WHERE {column} = :u", u=user_jid)
    assert row is not None
    return int(row[0])


async def outbox_row(store: Store, user_jid: str, state: str, updated_at: float) -> None:
    item = await store.outbox.enqueue("sms", user_jid, f"+1555{uuid.uuid4().int % 10**7:07d}", {})
    assert item is not None
    await store.execute(
        "UPDATE outbox SET state = :state, updated_at = :at WHERE id = :id",
        state=state,
        at=updated_at,
        id=item.id,
    )


async def test_delivered_and_failed_messages_go_and_waiting_ones_stay(store: Store) -> None:
    alice = user()
    for state in ("delivered", "failed", "pending", "sending"):
        await outbox_row(store, alice, state, OLD)
    await outbox_row(store, alice, "delivered", RECENT)
    sms = SmsMessages(store)
    await sms.migrate()
    for sid, at in ((f"SMold{alice}", OLD), (f"SMnew{alice}", RECENT)):
        await sms.record(
            SentSms(sid, None, alice, alice, "+15550000000", None, False, "sent", None)
        )
        await store.execute("UPDATE sms_messages SET updated_at = :at WHERE sid = :s", at=at, s=sid)

    await prune_once(store, ONE_DAY, now=NOW)

    rows = await store.fetch_all(
        "SELECT state, updated_at FROM outbox WHERE user_jid = :u ORDER BY id", u=alice
    )
    assert [(row[0], row[1] == RECENT) for row in rows] == [
        ("pending", False),
        ("sending", False),
        ("delivered", True),
    ]
    assert [
        row[0]
        for row in await store.fetch_all(
            "SELECT sid FROM sms_messages WHERE user_jid = :u", u=alice
        )
    ] == [f"SMnew{alice}"]


async def test_id_maps_reactions_and_mail_threads_go_after_their_horizon(store: Store) -> None:
    alice = user()
    headers = MailHeaderLog(store)
    await headers.migrate()
    for n, at in ((1, OLD), (2, RECENT)):
        await store.message_ids.record(
            MessageIdMapping("sms", alice, "+15550000000", "in", f"x{n}", f"r{n}", body="hi")
        )
        await store.reactions.set("sms", alice, f"x{n}", alice, ["👍"])
        await headers.remember(MailHeaders(alice, "bob@example.net", f"<m{n}@x>", None, "s", ()))
        for table in ("message_ids", "reactions", "email_headers"):
            await store.execute(
                f"UPDATE {table} SET created_at = :at WHERE user_jid = :u AND created_at > :old",
                at=at,
                u=alice,
                old=OLD + 1,
            )

    await prune_once(store, ONE_DAY, now=NOW)

    assert await store.message_ids.find("sms", alice, "x1") is None
    assert await store.message_ids.find("sms", alice, "x2") is not None
    assert await store.reactions.of("sms", alice, "x1", alice) == ()
    assert await store.reactions.of("sms", alice, "x2", alice) == ("👍",)
    assert await remaining(store, "email_headers", alice) == 1


async def test_old_room_lines_go(store: Store) -> None:
    alice = user()
    archive = RoomArchive(store, "irc")
    await archive.migrate()
    await archive.add(alice, "#chan%irc.example.net", "bob", "old line", timestamp=OLD)
    await archive.add(alice, "#chan%irc.example.net", "bob", "new line", timestamp=RECENT)

    deleted = await prune_once(store, ONE_DAY, now=NOW)

    assert deleted["room_archive"] >= 1
    lines = await archive.last(alice, "#chan%irc.example.net", 10)
    assert [line.body for line in lines] == ["new line"]


async def test_delivered_inbound_events_go_and_waiting_ones_stay(store: Store) -> None:
    alice = user()
    for key in ("old-delivered", "new-delivered"):
        await store.inbound.put("sms", alice, {}, dedup_key=f"{alice}{key}", delivered=True)
    await store.inbound.put("sms", alice, {}, dedup_key=f"{alice}old-queued")
    await store.execute(
        "UPDATE inbound SET delivered_at = :at, created_at = :at WHERE user_jid = :u"
        " AND dedup_key <> :new",
        at=OLD,
        u=alice,
        new=f"{alice}new-delivered",
    )

    await prune_once(store, ONE_DAY, now=NOW)

    rows = await store.fetch_all("SELECT dedup_key FROM inbound WHERE user_jid = :u", u=alice)
    assert sorted(row[0] for row in rows) == [f"{alice}new-delivered", f"{alice}old-queued"]


async def test_media_go_at_their_own_expiry(store: Store) -> None:
    owner = user()
    media = MediaFiles(store)
    await media.migrate()
    for token, expires in ((f"gone{owner}", NOW - 1), (f"kept{owner}", NOW + 60)):
        await media.add(
            token, owner=owner, content_type="text/plain", data=b"x", expires_at=expires
        )

    await prune_once(store, ONE_DAY, now=NOW)

    rows = await store.fetch_all("SELECT token FROM media WHERE owner = :o", o=owner)
    assert [row[0] for row in rows] == [f"kept{owner}"]


async def test_a_horizon_of_null_keeps_forever(store: Store) -> None:
    alice = user()
    archive = RoomArchive(store, "irc")
    await archive.migrate()
    await archive.add(alice, "#chan%irc.example.net", "bob", "ancient", timestamp=NOW - 9999 * DAY)
    await outbox_row(store, alice, "delivered", NOW - 9999 * DAY)

    forever = RetentionSettings(archive_days=None, outbox_days=None)
    await prune_once(store, forever, now=NOW)

    assert await remaining(store, "room_archive", alice) == 1
    assert await remaining(store, "outbox", alice) == 1


async def test_many_old_rows_go_in_batches(store: Store, monkeypatch: Any) -> None:
    monkeypatch.setattr(retention, "BATCH_ROWS", 3)
    alice = user()
    for _ in range(10):
        await store.message_ids.record(MessageIdMapping("sms", alice, "c", "in", None, None))
    await store.execute(
        "UPDATE message_ids SET created_at = :at WHERE user_jid = :u", at=OLD, u=alice
    )

    await prune_once(store, ONE_DAY, now=NOW)

    assert await remaining(store, "message_ids", alice) == 0


async def test_table_rows_counts_the_tables_present(store: Store) -> None:
    alice = user()
    await store.message_ids.record(MessageIdMapping("sms", alice, "c", "in", None, None))
    rows = await retention.table_rows(store)
    assert rows["message_ids"] >= 1
    assert {"registrations", "outbox", "inbound", "message_ids"} <= rows.keys()
    assert set(rows) <= set(retention.TABLES)


async def test_every_table_of_the_gateway_is_counted(tmp_path: Path) -> None:
    """A new table must join ``retention.TABLES`` (and a rule, if it grows with traffic)."""
    store = await Store.open(f"sqlite:///{tmp_path / 'all.db'}")
    try:
        await RoomArchive(store, "irc").migrate()
        await MediaFiles(store).migrate()
        await SmsMessages(store).migrate()
        await MailHeaderLog(store).migrate()
        await store.migrate("webhook", HOOK_MIGRATIONS)
        rows = await store.fetch_all("SELECT name FROM sqlite_master WHERE type = 'table'")
        tables = {row[0] for row in rows} - {"portway_schema", "sqlite_sequence"}
        assert tables == set(retention.TABLES)
    finally:
        await store.close()


async def test_the_schedule_prunes_while_the_gateway_runs(store: Store) -> None:
    """Not only at start: a key delivered after the first round is forgotten by a later one."""
    alice = user()
    settings = RetentionSettings(inbound_days=0.5 / DAY, interval_minutes=0.05 / 60)
    metrics = Metrics()
    pruner = asyncio.create_task(keep_pruning(store, lambda: settings, metrics))
    try:
        await asyncio.sleep(0.1)  # the round at start is over: this key comes after it
        assert await store.inbound.put("sms", alice, {}, dedup_key=alice, delivered=True)
        assert await store.inbound.put("sms", alice, {}, dedup_key=alice) is None
        await asyncio.sleep(1.0)
        assert await store.inbound.put("sms", alice, {}, dedup_key=alice) is not None
    finally:
        pruner.cancel()
    pruned = metrics.registry.get_sample_value("portway_pruned_rows_total", {"table": "inbound"})
    assert pruned is not None and pruned >= 1


async def test_new_settings_take_effect_at_once_not_after_the_running_interval(
    store: Store,
) -> None:
    """A reload that shortens a horizon wakes the schedule: the hour-long wait that was
    running is not sat out."""
    alice = user()
    settings = RetentionSettings(interval_minutes=60)
    changed = asyncio.Event()
    pruner = asyncio.create_task(keep_pruning(store, lambda: settings, Metrics(), changed))
    try:
        await asyncio.sleep(0.1)  # the round at start is over; the next is an hour away
        assert await store.inbound.put("sms", alice, {}, dedup_key=alice, delivered=True)
        settings = RetentionSettings(inbound_days=0.05 / DAY, interval_minutes=60)
        await asyncio.sleep(0.1)
        changed.set()
        for _ in range(50):
            if await store.inbound.put("sms", alice, {}, dedup_key=alice) is not None:
                break  # the key was forgotten: it is taken again
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the new horizon waited for the running interval")
    finally:
        pruner.cancel()


async def test_a_failing_round_does_not_stop_the_schedule(monkeypatch: Any) -> None:
    rounds: list[float] = []

    async def failing(store: Any, settings: Any) -> dict[str, int]:
        rounds.append(time.time())
        raise OSError("database away")

    monkeypatch.setattr("component.retention.prune_once", failing)
    settings = RetentionSettings(interval_minutes=0.02 / 60)
    pruner = asyncio.create_task(keep_pruning(SimpleNamespace(), lambda: settings, Metrics()))  # type: ignore[arg-type]
    await asyncio.sleep(0.2)
    pruner.cancel()
    assert len(rounds) >= 3


# -- config ------------------------------------------------------------------------------------

BASE = "allowed_domains: [example.org]\ntransports: {}\n"


def test_the_defaults_keep_a_month_of_messages_and_a_week_of_dedup_keys() -> None:
    config = parse_config(BASE)
    assert config.retention == RetentionSettings()
    assert (config.retention.outbox_days, config.retention.inbound_days) == (30, 7)
    assert config.retention.interval_minutes == 60


def test_fractions_and_null_are_accepted() -> None:
    config = parse_config(
        BASE + "retention: {archive_days: null, inbound_days: 0.25, interval_minutes: 0.5}\n"
    )
    assert config.retention.archive_days is None
    assert config.retention.inbound_days == 0.25
    assert config.retention.interval_minutes == 0.5


@pytest.mark.parametrize(
    ("section", "problem"),
    [
        ("{outbox_days: 0}", "retention.outbox_days must be more than 0, not 0"),
        ("{archive_days: -1}", "retention.archive_days must be more than 0, not -1"),
        ("{interval_minutes: 0}", "retention.interval_minutes must be more than 0, not 0"),
        ("{inbound_days: soon}", "retention.inbound_days must be a number, not 'soon'"),
        ("{media_days: 3}", "retention.media_days is not a known option"),
    ],
)
def test_bad_values_name_the_field(section: str, problem: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(BASE + f"retention: {section}\n")
    assert any(said.startswith(problem) for said in raised.value.problems), raised.value.problems
