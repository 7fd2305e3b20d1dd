"""Types of the factory fixtures in tests/conftest.py, for annotating test functions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from .irc_client import RawIrcClient
from .ngircd import Ngircd
from .prosody import Prosody
from .xmpp_client import XmppClient

#: make_prosody(components=None, users=None, privileged=(), **Prosody kwargs) -> Prosody
MakeProsody = Callable[..., Prosody]
#: make_ngircd(**Ngircd kwargs) -> Ngircd
MakeNgircd = Callable[..., Ngircd]
#: await xmpp_client(jid, password, prosody) -> XmppClient
ConnectXmpp = Callable[[str, str, Prosody], Awaitable[XmppClient]]
#: await irc_client(ngircd, nick) -> RawIrcClient
ConnectIrc = Callable[[Ngircd, str], Awaitable[RawIrcClient]]
