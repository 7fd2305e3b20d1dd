"""What the gateway remembers of each mail for threading: its subject and References chain.

The core's ``message_ids`` map ties a Message-ID to an XMPP id and thread. A reply also needs
the parent's subject and References, and the last mail of an XMPP ``<thread>``; this small
table of the email transport's own holds those.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mappings.store import Store

MIGRATIONS: list[str] = [
    # 1: one row per mail a user sent or received
    """
    CREATE TABLE email_headers (
        id {id_pk},
        user_jid TEXT NOT NULL,
        contact TEXT NOT NULL,
        message_id TEXT NOT NULL,
        thread TEXT,
        subject TEXT,
        refs TEXT NOT NULL DEFAULT '',
        sender_jid TEXT,
        created_at {float} NOT NULL,
        UNIQUE (user_jid, message_id)
    );
    CREATE INDEX email_headers_thread ON email_headers (user_jid, thread, id)
    """,
    # 2: the id of the stanza a mail was sent for (a correction's own, not the original's)
    "ALTER TABLE email_headers ADD COLUMN xmpp_id TEXT",
]


@dataclass(frozen=True)
class MailHeaders:
    user_jid: str
    contact: str
    message_id: str
    thread: str | None
    subject: str | None
    references: tuple[str, ...]
    #: the full JID that sent it (outbound only): errors go there, since a server drops an
    #: error stanza addressed to a bare JID (RFC 6121 §8.5.2.1.1)
    sender_jid: str | None = None
    #: when the gateway saw it (sent or received): the date of a reply's "On … wrote:"
    created_at: float = 0.0
    #: the id of the stanza it was sent for (outbound only): a bounce is an error for that
    #: stanza, also when ``message_ids`` names the mail by the message a correction replaced
    xmpp_id: str | None = None


_COLUMNS = "user_jid, contact, message_id, thread, subject, refs, sender_jid, xmpp_id"
_READ = f"{_COLUMNS}, created_at"


class MailHeaderLog:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def migrate(self) -> None:
        await self._store.migrate("email", MIGRATIONS)

    async def remember(self, headers: MailHeaders) -> None:
        """Record a mail once; a retried delivery of the same mail changes nothing."""
        await self._store.execute(
            f"INSERT INTO email_headers ({_COLUMNS}, created_at) VALUES (:user_jid, :contact,"
            " :message_id, :thread, :subject, :refs, :sender_jid, :xmpp_id, :now)"
            " ON CONFLICT (user_jid, message_id) DO NOTHING",
            user_jid=headers.user_jid,
            contact=headers.contact,
            message_id=headers.message_id,
            thread=headers.thread,
            subject=headers.subject,
            refs=" ".join(headers.references),
            sender_jid=headers.sender_jid,
            xmpp_id=headers.xmpp_id,
            now=time.time(),
        )

    async def get(self, user_jid: str, message_id: str) -> MailHeaders | None:
        row = await self._store.fetch_one(
            f"SELECT {_READ} FROM email_headers"
            " WHERE user_jid = :user_jid AND message_id = :message_id",
            user_jid=user_jid,
            message_id=message_id,
        )
        return _headers(row) if row else None

    async def last_in_thread(self, user_jid: str, contact: str, thread: str) -> MailHeaders | None:
        row = await self._store.fetch_one(
            f"SELECT {_READ} FROM email_headers WHERE user_jid = :user_jid"
            " AND contact = :contact AND thread = :thread ORDER BY id DESC LIMIT 1",
            user_jid=user_jid,
            contact=contact,
            thread=thread,
        )
        return _headers(row) if row else None

    async def forget_user(self, user_jid: str) -> None:
        await self._store.execute(
            "DELETE FROM email_headers WHERE user_jid = :user_jid", user_jid=user_jid
        )


def _headers(row: Any) -> MailHeaders:
    user_jid, contact, message_id, thread, subject, refs, sender_jid, xmpp_id, created_at = row
    return MailHeaders(
        user_jid,
        contact,
        message_id,
        thread,
        subject,
        tuple(refs.split()),
        sender_jid,
        float(created_at),
        xmpp_id,
    )
