"""``portway mappings export|import``: everything a restore needs, as JSON lines.

An export holds what users made and cannot make again by themselves: registrations and the
addresses bound to them, contacts, per-user settings (an IRC nick, a NickServ password) and
the hooks users created, with their secrets. Whatever the gateway can rebuild or that loses
its worth with time (queues, message-id maps, the room archive, served media) stays out.

Every secret sits under the record's ``"secrets"`` key and nowhere else, so that a reader
sees at once what must stay private, and a script can strip them. An export written to a
file is created with mode 0600.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from typing import Any, TextIO

from component.cli_mappings import CliError, check_user, known_transport
from component.config import Config
from mappings.codec import dumps
from mappings.contacts import ContactMapping
from mappings.hooks import HOOK_MIGRATIONS, Hook, Hooks
from mappings.registrations import AddressTaken, Registration
from transports.webhook.settings import HOOK_NAME_PATTERN

#: a setting or registration value under one of these names is a secret
_SECRET_KEY = re.compile(r"password|secret|token", re.IGNORECASE)


def private_file(path: str) -> TextIO:
    """Open ``path`` for writing, readable by its owner alone, even if it existed before."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)
    return os.fdopen(descriptor, "w", encoding="utf-8")


async def export(store: Any, out: TextIO) -> int:
    """Write every record as one JSON line; return how many."""
    count = 0
    for record in await _records(store):
        out.write(dumps(record) + "\n")
        count += 1
    return count


async def _records(store: Any) -> list[dict[str, Any]]:
    await store.migrate("webhook", HOOK_MIGRATIONS)
    records: list[dict[str, Any]] = []
    for registration in await store.registrations.list():
        data, secrets = _split(registration.data)
        records.append(
            {
                "type": "registration",
                "transport": registration.transport,
                "user_jid": registration.user_jid,
                "address": registration.address,
                "data": data,
            }
            | _secrets(secrets)
        )
    for contact in await store.contacts.list():
        records.append(
            {
                "type": "contact",
                "transport": contact.transport,
                "user_jid": contact.user_jid,
                "address": contact.address,
                "display_name": contact.display_name,
                "subscription": contact.subscription,
            }
        )
    for transport, user_jid, scope, stored in await store.settings.all():
        data, secrets = _split(stored)
        records.append(
            {
                "type": "setting",
                "transport": transport,
                "user_jid": user_jid,
                "scope": scope,
                "data": data,
            }
            | _secrets(secrets)
        )
    for hook in await Hooks(store).all():
        records.append(
            {
                "type": "hook",
                "name": hook.name,
                "owner": hook.owner,
                "deliver_to": list(hook.deliver_to),
                "rooms": list(hook.rooms),
                "url": hook.url,
                "secrets": {"secret": hook.secret},
            }
        )
    return records


def _split(data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    public = {key: value for key, value in data.items() if not _SECRET_KEY.search(key)}
    return public, {key: value for key, value in data.items() if key not in public}


def _secrets(secrets: dict[str, Any]) -> dict[str, Any]:
    return {"secrets": secrets} if secrets else {}


async def restore(config: Config, store: Any, source: TextIO) -> int:
    """Read what :func:`export` wrote; a record already there is replaced by the file's.

    Users are checked against ``allowed_domains`` as if they registered now. A bad line
    stops the import at that line, naming it; the lines before it are kept.
    """
    await store.migrate("webhook", HOOK_MIGRATIONS)
    count = 0
    for number, record in _lines(source):
        try:
            await _restore(config, store, record)
        except KeyError as missing:
            raise CliError(f"line {number}: not an exported record (no {missing})") from None
        except (TypeError, AttributeError, ValueError) as exc:
            raise CliError(f"line {number}: not an exported record ({exc})") from None
        except CliError as error:
            raise CliError(f"line {number}: {error}") from None
        count += 1
    return count


def _lines(source: TextIO) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, line in enumerate(source, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CliError(f"line {number}: not an exported record ({exc})") from None
        if not isinstance(record, dict):
            raise CliError(f"line {number}: not an exported record (not a JSON object)")
        yield number, record


async def _restore(config: Config, store: Any, record: dict[str, Any]) -> None:
    kind = record["type"]
    if kind == "hook":
        await _restore_hook(config, store, record)
        return
    transport = known_transport(record["transport"])
    user = check_user(config, record["user_jid"])
    secrets = dict(record.get("secrets") or {})
    if kind == "registration":
        data = dict(record.get("data") or {}) | secrets
        try:
            await store.registrations.save(
                Registration(transport, user, record.get("address"), data)
            )
        except AddressTaken as taken:
            raise CliError(str(taken)) from None
    elif kind == "contact":
        contact = ContactMapping(
            transport,
            user,
            record["address"],
            record.get("display_name"),
            record.get("subscription") or "none",
        )
        if not await store.contacts.add(contact):
            await store.contacts.update(
                transport,
                user,
                contact.address,
                display_name=contact.display_name,
                subscription=contact.subscription,
            )
    elif kind == "setting":
        scope = str(record["scope"])
        await store.settings.put(transport, user, scope, dict(record["data"]) | secrets)
    else:
        raise CliError(f"unknown record type {kind!r}")


async def _restore_hook(config: Config, store: Any, record: dict[str, Any]) -> None:
    name = record["name"]
    if not isinstance(name, str) or not re.match(HOOK_NAME_PATTERN, name):
        raise CliError(f"{name!r} is not a hook name")
    owner = check_user(config, record["owner"])
    secret = (record.get("secrets") or {}).get("secret")
    if not isinstance(secret, str) or not secret.strip():
        raise CliError(f"the hook {name} has no secret")
    hooks = Hooks(store)
    current = await hooks.get(name)
    if current is not None and current.owner != owner:
        raise CliError(f"the hook {name} belongs to {current.owner}")
    hook = Hook(
        name,
        owner,
        secret,
        deliver_to=tuple(check_user(config, jid) for jid in record.get("deliver_to") or ()),
        rooms=tuple(str(room) for room in record.get("rooms") or ()),
        url=record.get("url"),
    )
    if current is not None:
        await hooks.delete(name, owner)
    await hooks.create(hook)
