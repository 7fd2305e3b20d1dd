"""IRCv3 batches: a replay batch's lines are history; the table of open batches is bounded."""

from __future__ import annotations

from transports.irc.batches import MAX_OPEN_BATCHES, OpenBatches
from transports.irc.protocol import parse_line


def test_lines_of_a_chathistory_batch_are_replays_and_others_are_not() -> None:
    batches = OpenBatches()
    batches.started("h1", "chathistory")
    batches.started("n1", "netsplit")
    assert batches.is_replay(parse_line("@batch=h1 :bob!b@h PRIVMSG #c :old"))
    assert not batches.is_replay(parse_line("@batch=n1 :bob!b@h QUIT :split"))
    assert not batches.is_replay(parse_line(":bob!b@h PRIVMSG #c :now"))
    batches.ended("h1")
    assert not batches.is_replay(parse_line("@batch=h1 :bob!b@h PRIVMSG #c :late"))


def test_a_server_that_never_closes_its_batches_cannot_grow_the_table() -> None:
    batches = OpenBatches()
    for number in range(MAX_OPEN_BATCHES * 10):
        batches.started(f"b{number}", "chathistory")
    assert len(batches._open) == MAX_OPEN_BATCHES
    assert batches.is_replay(parse_line(f"@batch=b{MAX_OPEN_BATCHES * 10 - 1} PRIVMSG #c :x"))
