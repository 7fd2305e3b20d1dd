"""The core schema, one entry per version. Append; never edit a released entry.

``{id_pk}`` and ``{float}`` are filled per dialect by :meth:`mappings.store.Store.ddl`.
Times are POSIX seconds, so both dialects compare them the same way.
"""

from __future__ import annotations

CORE_MIGRATIONS: list[str] = [
    # 1: registrations, contacts, outbox, inbound queue, message ids, per-user settings
    """
    CREATE TABLE registrations (
        transport TEXT NOT NULL,
        user_jid TEXT NOT NULL,
        address TEXT,
        data TEXT NOT NULL DEFAULT '{{}}',
        created_at {float} NOT NULL,
        PRIMARY KEY (transport, user_jid)
    );
    CREATE UNIQUE INDEX registrations_address ON registrations (transport, address);
    CREATE TABLE contacts (
        id {id_pk},
        transport TEXT NOT NULL,
        user_jid TEXT NOT NULL,
        address TEXT NOT NULL,
        display_name TEXT,
        subscription TEXT NOT NULL DEFAULT 'none',
        created_at {float} NOT NULL,
        UNIQUE (transport, user_jid, address)
    );
    CREATE TABLE outbox (
        id {id_pk},
        transport TEXT NOT NULL,
        user_jid TEXT NOT NULL,
        contact TEXT NOT NULL,
        xmpp_id TEXT,
        dedup_key TEXT,
        payload TEXT NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at {float} NOT NULL,
        lease_until {float},
        last_error TEXT,
        remote_id TEXT,
        created_at {float} NOT NULL,
        updated_at {float} NOT NULL,
        UNIQUE (transport, dedup_key)
    );
    CREATE INDEX outbox_due ON outbox (transport, state, next_attempt_at);
    CREATE TABLE inbound (
        id {id_pk},
        transport TEXT NOT NULL,
        user_jid TEXT NOT NULL,
        dedup_key TEXT,
        event TEXT NOT NULL,
        state TEXT NOT NULL,
        created_at {float} NOT NULL,
        delivered_at {float},
        UNIQUE (transport, dedup_key)
    );
    CREATE INDEX inbound_queued ON inbound (transport, state, id);
    CREATE TABLE message_ids (
        id {id_pk},
        transport TEXT NOT NULL,
        user_jid TEXT NOT NULL,
        contact TEXT NOT NULL,
        direction TEXT NOT NULL,
        xmpp_id TEXT,
        remote_id TEXT,
        thread TEXT,
        created_at {float} NOT NULL
    );
    CREATE INDEX message_ids_remote ON message_ids (transport, remote_id);
    CREATE INDEX message_ids_xmpp ON message_ids (transport, user_jid, xmpp_id);
    CREATE INDEX message_ids_contact ON message_ids (transport, user_jid, contact, id);
    CREATE TABLE user_settings (
        transport TEXT NOT NULL,
        user_jid TEXT NOT NULL,
        scope TEXT NOT NULL,
        data TEXT NOT NULL,
        PRIMARY KEY (transport, user_jid, scope)
    )
    """,
    # 2: inbound events are claimed with a lease, so that several processes sharing one
    # database never deliver the same event twice
    """
    ALTER TABLE inbound ADD COLUMN lease_until {float}
    """,
    # 3: a drained batch is confirmed by the id of the ping that follows it, whichever
    # process's connection the server hands the answer to; and the outbox finds the oldest
    # open message of a conversation quickly (messages of one conversation go in order)
    """
    ALTER TABLE inbound ADD COLUMN confirm_id TEXT;
    CREATE INDEX inbound_confirm ON inbound (confirm_id);
    CREATE INDEX outbox_conversation ON outbox (transport, user_jid, contact, id)
    """,
    # 4: an inbound event that the XMPP server refuses, or that breaks the stream, is set
    # aside after a bounded number of attempts, so that it cannot stop the queue behind it
    """
    ALTER TABLE inbound ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0
    """,
    # 5: corrections, retractions, reactions and replies find the message they are about on
    # the other side: each id map keeps the beginning of its text (a phone's tapback quotes
    # it), ids are found from either side, and each sender's reactions to a message are kept
    # (XEP-0444 sends the whole set; networks add and remove one at a time)
    """
    ALTER TABLE message_ids ADD COLUMN body TEXT;
    CREATE INDEX message_ids_user_remote ON message_ids (transport, user_jid, remote_id);
    CREATE TABLE reactions (
        transport TEXT NOT NULL,
        user_jid TEXT NOT NULL,
        target TEXT NOT NULL,
        reactor TEXT NOT NULL,
        emojis TEXT NOT NULL,
        created_at {float} NOT NULL,
        PRIMARY KEY (transport, user_jid, target, reactor)
    )
    """,
]
