"""What the user is told when an event meant for them is set aside.

An event that the XMPP server refused, or that made it close the stream, too many times is
kept for the admin (``portway queue``) instead of holding up the queue. The user would
otherwise never learn that a message was sent to them: they get a word from the gateway's own
JID naming the sender and the queue item, and nothing of the content, which may hold what
only the recipient should read.
"""

from __future__ import annotations

from collections.abc import Callable

from mappings.inbound import QueuedEvent
from transports.events import InboundMessage

#: Events whose recipient is a room, not a user: nobody to tell but the admin's log.
_ROOM_BOUND = frozenset({"room-post", "room-leave"})


def set_aside_notice(
    queued: QueuedEvent, contact_jid: Callable[[str], str]
) -> InboundMessage | None:
    """The word for the user an event was meant for, or ``None`` when there is nobody to tell.

    ``contact_jid`` turns the sender's address into the JID the user knows it by.
    """
    kind = queued.event.get("kind")
    fields = queued.event.get("fields") or {}
    sender = fields.get("contact") or fields.get("room")
    if kind in _ROOM_BOUND or not isinstance(sender, str) or not sender:
        return None  # a room's post, or itself a word from the gateway: no notice of a notice
    try:
        who = contact_jid(sender)
    except ValueError:  # an address that is no JID is part of what went wrong
        who = "a contact"
    return InboundMessage(
        user_jid=queued.user_jid.split("/", 1)[0],
        contact="",  # from the gateway itself
        body=(
            f"A message from {who} could not be delivered to you: the XMPP server refused it "
            f"{queued.attempts} times. It was set aside for the gateway's administrator "
            f"(queue item {queued.id}); the messages after it were delivered."
        ),
        xmpp_id=f"set-aside-{queued.id}-{queued.attempts}",
    )
