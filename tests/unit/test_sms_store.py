"""The SMS transport's own tables (sent texts, served media) on SQLite and PostgreSQL."""

from __future__ import annotations

import time
import uuid

from mappings.media import MediaFiles
from mappings.sms_messages import SentSms, SmsMessages
from mappings.store import Store


def sent(sid: str, outbox_id: int = 1) -> SentSms:
    return SentSms(
        sid=sid,
        outbox_id=outbox_id,
        user_jid="alice@example.org",
        from_jid="alice@example.org/phone",
        contact="+15557654321",
        xmpp_id="m1",
        receipt_requested=True,
        status="queued",
        error_code=None,
    )


async def test_sent_texts_keep_their_final_status(store: Store) -> None:
    messages = SmsMessages(store)
    await messages.migrate()
    await messages.migrate()
    sid = "SM" + uuid.uuid4().hex
    outbox_id = int(time.time() * 1000) % 2_000_000_000
    await messages.record(sent(sid, outbox_id))
    await messages.record(sent(sid, outbox_id))  # a repeat is a no-op
    found = await messages.by_outbox_id(outbox_id)
    assert found == sent(sid, outbox_id)
    assert await messages.update_status(sid, "sent", None)
    assert await messages.update_status(sid, "undelivered", "30003")
    assert not await messages.update_status(sid, "sent", None)  # late callback
    assert not await messages.update_status(sid, "undelivered", "30003")  # repeated callback
    final = await messages.by_sid(sid)
    assert final is not None and (final.status, final.error_code) == ("undelivered", "30003")
    await messages.forget_user("alice@example.org")
    assert await messages.by_sid(sid) is None


async def test_media_is_stored_as_bytes_and_expires(store: Store) -> None:
    files = MediaFiles(store)
    await files.migrate()
    data = bytes(range(256)) * 4
    key = "sms:" + uuid.uuid4().hex
    token = await files.add(
        uuid.uuid4().hex,
        owner="sms",
        content_type="image/png",
        data=data,
        expires_at=time.time() + 60,
        source_key=key,
    )
    again = await files.add(
        uuid.uuid4().hex,
        owner="sms",
        content_type="image/png",
        data=data,
        expires_at=time.time() + 60,
        source_key=key,
    )
    assert again == token
    file = await files.get(token)
    assert file is not None and file.data == data and file.content_type == "image/png"
    old = await files.add(
        uuid.uuid4().hex,
        owner="sms",
        content_type="text/plain",
        data=b"old",
        expires_at=time.time() - 1,
    )
    assert await files.get(old) is None
    assert await files.purge_expired() >= 1
    assert await files.get(token) is not None
