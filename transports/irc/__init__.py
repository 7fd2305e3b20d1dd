"""IRC: channels as MUC rooms, nicks for private messages, servers as contacts."""

from transports.irc.transport import IrcTransport

__all__ = ["IrcTransport"]
