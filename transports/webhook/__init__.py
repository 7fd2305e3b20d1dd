"""Webhooks: services post into XMPP, users' messages go out as signed POSTs."""

from transports.webhook.transport import WebhookTransport

__all__ = ["WebhookTransport"]
