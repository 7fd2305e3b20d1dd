"""Which of the server's replies answer the user's INVITEs.

A server answers an INVITE with 341 (RPL_INVITING) or with an error numeric: some name the
nick (401, 443), others only the channel (442, 482), and none names the INVITE. The session
keeps here the invitations still waiting for their answer, so that a reply is told apart
from the same numeric caused by something else (482 after a KICK, 401 after a private
message) and becomes what the user sees: a word in the room, or an error stanza.
"""

from __future__ import annotations

from dataclasses import dataclass

from transports.irc.channel import fold
from transports.irc.protocol import IrcLine

#: Error numerics an INVITE may get → XMPP error condition.
INVITE_ERRORS = {
    "401": "item-not-found",  # ERR_NOSUCHNICK
    "442": "not-acceptable",  # ERR_NOTONCHANNEL
    "443": "conflict",  # ERR_USERONCHANNEL
    "482": "forbidden",  # ERR_CHANOPRIVSNEEDED (an invite-only channel)
}
#: Replies whose first parameter after ours is the invited nick (the others name the channel).
NAMING_THE_NICK = ("341", "401", "443")


@dataclass(frozen=True)
class InviteAnswer:
    nick: str
    channel_key: str
    condition: str | None  # None: the server passed the invitation on
    text: str


class PendingInvites:
    """Invitations sent and not answered yet, by invited nick (one at a time per nick)."""

    __slots__ = ("_waiting",)

    def __init__(self) -> None:
        #: fold(nick) → (nick, channel key)
        self._waiting: dict[str, tuple[str, str]] = {}

    def __bool__(self) -> bool:
        return bool(self._waiting)

    def sent(self, nick: str, channel_key: str) -> None:
        self._waiting[fold(nick)] = (nick, channel_key)

    def answer(self, line: IrcLine) -> InviteAnswer | None:
        """The invitation ``line`` answers, and how; None if it answers none of ours."""
        if line.command != "341" and line.command not in INVITE_ERRORS:
            return None
        if line.command in NAMING_THE_NICK:
            found = self._waiting.pop(fold(line.param(1)), None)
        else:
            channel = fold(line.param(1))
            nick = next((n for n, (_, key) in self._waiting.items() if key == channel), None)
            found = self._waiting.pop(nick) if nick is not None else None
        if found is None:
            return None
        nick, key = found
        if line.command == "341":
            return InviteAnswer(nick, key, None, f"{nick} has been invited to {line.param(2, key)}")
        reason = line.params[-1] if len(line.params) > 2 else line.command
        return InviteAnswer(
            nick, key, INVITE_ERRORS[line.command], f"cannot invite {nick} to {key}: {reason}"
        )
