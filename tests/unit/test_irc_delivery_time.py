"""IRC's delivery time out (``portway_delivery_seconds{transport="irc",direction="out"}``):
counted once per message, when its last line is written, also after waiting for the
connection; and the metric the host is told of."""

from __future__ import annotations

from component.metrics import Metrics
from tests.support.irc_fakes import enter, session
from transports.irc import channel_messages, user_commands

PHONE = "alice@example.org/phone"


async def test_a_message_of_several_lines_is_counted_once_with_when_it_was_taken() -> None:
    made, conn, hooks = session()
    await enter(made, "#chan")
    await channel_messages.say(made, PHONE, "#chan", "one\ntwo\nthree", "m1", None, None, 12.5)
    assert [line for line in conn.sent if line.startswith("PRIVMSG")] == [
        "PRIVMSG #chan one",
        "PRIVMSG #chan two",
        "PRIVMSG #chan three",
    ]
    assert hooks.handed == [12.5]


async def test_a_private_message_is_counted_once_it_leaves_after_registration() -> None:
    made, conn, hooks = session()
    made.connected = False
    await made.private("bob", "hi", "p1", PHONE, taken_at=7.0)
    assert hooks.handed == [] and not conn.sent  # waits for the connection
    made.connected = True
    user_commands.after_registration(made)
    assert conn.sent[-1] == "PRIVMSG bob hi" and hooks.handed == [7.0]


def test_the_host_counts_it_as_delivery_out() -> None:
    metrics = Metrics()
    metrics.handed_out("irc", 0.0)
    labels = {"transport": "irc", "direction": "out"}
    assert metrics.registry.get_sample_value("portway_delivery_seconds_count", labels) == 1
