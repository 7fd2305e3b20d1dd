"""Posts that correct an earlier post of the same hook, and the ids that make it possible.

A service that posts an alert, then its resolution, wants the first message to change rather
than a second one to arrive: it posts again with ``replace`` set to the id the first post's
202 gave, and the user's client shows one message, corrected (XEP-0308). A hook with
``update_alerts`` does the same on its own for Alertmanager and Grafana notifications, keyed
on their ``groupKey``, until the group is resolved: the next firing is news, and starts a new
message. Each message's ids are kept in ``store.message_ids`` (they outlive restarts), and
only a post of the same hook, to the same target, can be corrected.
"""

from __future__ import annotations

import hashlib

from mappings.hooks import Hook
from mappings.message_ids import MessageIdMapping
from mappings.store import Store
from transports.webhook.payloads import Post

NAME = "webhook"


class UnknownPost(Exception):
    """``replace`` names no earlier post of this hook (or one too old to be remembered)."""


def alert_key(hook: Hook, group: str) -> str:
    """The id a hook's alert group is remembered under (group keys can be long: hashed)."""
    digest = hashlib.sha256(group.encode("utf-8", "replace")).hexdigest()[:32]
    return f"alert-group:{hook.name}:{digest}"


def _key(hook: Hook, post: Post) -> str | None:
    if post.replace:
        return post.replace
    if hook.update_alerts and post.alert_group:
        return alert_key(hook, post.alert_group)
    return None


async def originals(
    store: Store, hook: Hook, post: Post, targets: tuple[str, ...]
) -> dict[str, str]:
    """The XMPP id of the first message each target got of what this post corrects.

    Corrections always name the first message (XEP-0308 asks so), however many came since.
    Raises :class:`UnknownPost` when ``replace`` names nothing this hook sent to any target.
    """
    key = _key(hook, post)
    if key is None:
        return {}
    found = {}
    for target in targets:
        earlier = await store.message_ids.find(NAME, target, key)
        if (
            earlier is not None
            and earlier.contact == hook.name
            and earlier.direction == "in"
            and earlier.xmpp_id
        ):
            found[target] = earlier.xmpp_id
    if post.replace and not found:
        raise UnknownPost(f"no earlier post {post.replace} of this hook to replace")
    return found


async def remember(
    store: Store, hook: Hook, post: Post, target: str, post_id: str, first_id: str
) -> None:
    """Keep what a later post needs to correct the message ``target`` got (``first_id``)."""
    await store.message_ids.record(
        MessageIdMapping(NAME, target, hook.name, "in", first_id, post_id, body=post.text)
    )
    if not (hook.update_alerts and post.alert_group):
        return
    key = alert_key(hook, post.alert_group)
    await store.message_ids.forget(NAME, target, key)
    if not post.alert_resolved:
        await store.message_ids.record(
            MessageIdMapping(NAME, target, hook.name, "in", first_id, key, body=post.text)
        )
