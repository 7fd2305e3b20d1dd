"""Texts the gateway handed to Twilio, and the last status Twilio reported for each.

Twilio reports delivery later, by MessageSid, in status callbacks; this table ties the SID to
the user, the contact and the XMPP message id (for the receipt or the error stanza), and to the
outbox item, so that an attempt repeated after a crash finds the text already sent instead of
sending it twice.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mappings.store import Store

SMS_MIGRATIONS: list[str] = [
    # 1: one row per message Twilio accepted
    """
    CREATE TABLE sms_messages (
        sid TEXT PRIMARY KEY,
        outbox_id INTEGER,
        user_jid TEXT NOT NULL,
        from_jid TEXT NOT NULL,
        contact TEXT NOT NULL,
        xmpp_id TEXT,
        receipt_requested INTEGER NOT NULL,
        status TEXT NOT NULL,
        error_code TEXT,
        created_at {float} NOT NULL,
        updated_at {float} NOT NULL
    );
    CREATE INDEX sms_messages_outbox ON sms_messages (outbox_id)
    """,
]

#: Twilio's statuses that end a message's life; a late ``sent`` must not overwrite them.
FINAL_STATUSES = frozenset({"delivered", "undelivered", "failed", "read", "canceled"})


@dataclass(frozen=True)
class SentSms:
    sid: str
    outbox_id: int | None
    user_jid: str
    from_jid: str  # the sending resource: error stanzas to a bare JID are dropped (RFC 6121)
    contact: str
    xmpp_id: str | None
    receipt_requested: bool
    status: str
    error_code: str | None


_FINAL_SQL = ", ".join(f"'{status}'" for status in sorted(FINAL_STATUSES))
_COLUMNS = (
    "sid, outbox_id, user_jid, from_jid, contact, xmpp_id, receipt_requested, status, error_code"
)


class SmsMessages:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def migrate(self) -> None:
        await self._store.migrate("sms", SMS_MIGRATIONS)

    async def record(self, sms: SentSms) -> None:
        now = time.time()
        await self._store.execute(
            f"INSERT INTO sms_messages ({_COLUMNS}, created_at, updated_at) VALUES (:sid,"
            " :outbox_id, :user_jid, :from_jid, :contact, :xmpp_id, :receipt_requested, :status,"
            " :error_code, :now, :now) ON CONFLICT (sid) DO NOTHING",
            sid=sms.sid,
            outbox_id=sms.outbox_id,
            user_jid=sms.user_jid,
            from_jid=sms.from_jid,
            contact=sms.contact,
            xmpp_id=sms.xmpp_id,
            receipt_requested=1 if sms.receipt_requested else 0,
            status=sms.status,
            error_code=sms.error_code,
            now=now,
        )

    async def by_sid(self, sid: str) -> SentSms | None:
        row = await self._store.fetch_one(
            f"SELECT {_COLUMNS} FROM sms_messages WHERE sid = :sid", sid=sid
        )
        return _sms(row) if row else None

    async def by_outbox_id(self, outbox_id: int) -> SentSms | None:
        row = await self._store.fetch_one(
            f"SELECT {_COLUMNS} FROM sms_messages WHERE outbox_id = :outbox_id",
            outbox_id=outbox_id,
        )
        return _sms(row) if row else None

    async def update_status(self, sid: str, status: str, error_code: str | None) -> bool:
        """Record a reported status; ``False`` if the message already had a final one."""
        count = await self._store.execute(
            "UPDATE sms_messages SET status = :status, error_code = :error_code,"
            f" updated_at = :now WHERE sid = :sid AND status NOT IN ({_FINAL_SQL})",
            sid=sid,
            status=status,
            error_code=error_code,
            now=time.time(),
        )
        return count > 0

    async def forget_user(self, user_jid: str) -> None:
        await self._store.execute(
            "DELETE FROM sms_messages WHERE user_jid = :user_jid", user_jid=user_jid
        )


def _sms(row: Any) -> SentSms:
    return SentSms(
        sid=row[0],
        outbox_id=None if row[1] is None else int(row[1]),
        user_jid=row[2],
        from_jid=row[3],
        contact=row[4],
        xmpp_id=row[5],
        receipt_requested=bool(row[6]),
        status=row[7],
        error_code=row[8],
    )
