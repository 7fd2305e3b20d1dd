"""What every connection or member of a network holds alike is held once: the capabilities
a server offers and enables, status-mode sets. Sharing must never let one connection's
change show on another."""

from __future__ import annotations

from tests.unit.test_irc_v3_caps import feed, negotiation
from transports.irc.channel import Channel
from transports.irc.modes import ModeChange, PrefixModes

LS = ":srv CAP * LS :server-time message-tags=draft away-notify sts=port=6697"
ACK = ":srv CAP me ACK :server-time message-tags away-notify"


def test_connections_offered_the_same_share_it_and_a_change_stays_their_own() -> None:
    first, _ = negotiation()
    second, _ = negotiation()
    for caps in (first, second):
        feed(caps, LS, ACK)
    assert first.offered is second.offered and first.enabled is second.enabled
    feed(first, ":srv CAP me DEL :away-notify")
    assert "away-notify" not in first.offered and not first.has("away-notify")
    assert second.offered["away-notify"] == "" and second.has("away-notify")
    feed(second, ":srv CAP me NEW :chghost")
    assert "chghost" in second.offered and "chghost" not in first.offered
    assert dict(first.offered) == {"server-time": "", "message-tags": "draft", "sts": "port=6697"}


def test_members_with_the_same_status_modes_share_one_set() -> None:
    prefix = PrefixModes.parse("(ov)@+")
    first, second = Channel("#a"), Channel("#b")
    first.add_names(["@alice", "+bob"], prefix)
    second.add_names(["@carol"], prefix)
    assert first.names is not None and second.names is not None
    assert first.names["alice"].modes is second.names["carol"].modes == {"o"}
    first.end_names()
    second.end_names()
    first.apply_modes([ModeChange(True, "v", "alice")], prefix)
    assert first.members["alice"].modes == {"o", "v"}
    assert second.members["carol"].modes == {"o"}
    first.apply_modes([ModeChange(False, "v", "alice")], prefix)
    assert first.members["alice"].modes is second.members["carol"].modes
