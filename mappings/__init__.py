"""Persistence: registrations, contact mappings, message-id maps and the durable queues."""

from mappings.store import Store

__all__ = ["Store"]
