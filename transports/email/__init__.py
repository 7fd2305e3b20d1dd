"""Email over SMTP: addresses as contacts, SMTP in and out, threading, attachments."""

from transports.email.transport import EmailTransport

__all__ = ["EmailTransport"]
