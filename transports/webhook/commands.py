"""Ad-hoc commands (XEP-0050) for users' own hooks: create, list, rotate the secret, delete.

A secret is shown once, in the command's result, and never again: list does not show it and
rotation replaces it. Hooks from the config file show in the list but are the admin's to
change.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from mappings.hooks import Hook, Hooks
from transports.base import Command, CommandResult, Form, FormField, GatewayError, NotFound
from transports.webhook.directory import HookDirectory, check_name, check_url, parse_jids
from transports.webhook.signing import new_secret

CREATE_FORM = Form(
    title="Create a hook",
    instructions=(
        "A hook is a contact that services post to. Its inbound URL and secret are shown once,"
        " when it is created."
    ),
    fields=(
        FormField("name", "Name (a-z, 0-9, . _ -)", required=True),
        FormField(
            "deliver_to",
            "JIDs that get its posts",
            "text-multi",
            desc="One per line; empty: you (unless rooms are set)",
        ),
        FormField("rooms", "MUC rooms it posts into", "text-multi", desc="Room JIDs, one per line"),
        FormField(
            "url",
            "URL your messages to it are POSTed to",
            desc=(
                "Optional; an http(s) URL on a public address (not loopback or a private"
                " network). Without it the hook only posts into XMPP"
            ),
        ),
    ),
)
#: Nothing to ask: the list is the command's result.
LIST_FORM = Form(title="Your hooks", instructions="The hooks you own or receive from.")
CONFIRM_DELETE = FormField("confirm", "Yes, delete it", "boolean", value=False)
#: What rotate and delete answer at once to a user with nothing to choose from.
NONE_OWNED = "You have no hooks of your own (hooks from the config are the admin's)."


class HookCommands:
    def __init__(
        self,
        directory: HookDirectory,
        stored: Hooks,
        domain: str,
        public_url: str,
        max_per_user: int,
        deleted: Callable[[Hook], Awaitable[None]],
    ) -> None:
        self._directory = directory
        self._stored = stored
        self._domain = domain
        self._public_url = public_url
        self._max_per_user = max_per_user
        self._deleted = deleted
        #: One lock per user creating a hook now; a lock nobody holds goes away by itself.
        self._creating: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    def commands(self) -> list[Command]:
        return [
            Command("webhook-create", "Create a hook", CREATE_FORM, self.create),
            # Config hooks name JIDs that need not register: they may see theirs.
            Command("webhook-list", "List hooks", LIST_FORM, self.list, needs_registration=False),
            Command("webhook-rotate", "Rotate a hook's secret", self.rotate_form, self.rotate),
            Command("webhook-delete", "Delete a hook", self.delete_form, self.delete),
        ]

    async def create(self, user_jid: str, values: dict[str, Any]) -> CommandResult:
        hook = Hook(
            name=check_name(str(values.get("name") or "")),
            owner=user_jid,
            secret=new_secret(),
            deliver_to=parse_jids(str(values.get("deliver_to") or "")),
            rooms=parse_jids(str(values.get("rooms") or "")),
            url=check_url(str(values.get("url") or "")),
        )
        # The count and the insert must not interleave with another create by the same user:
        # 40 submits at once all read "under the most allowed" and 12 of 3 were stored.
        lock = self._creating.setdefault(user_jid, asyncio.Lock())
        async with lock:
            if len(await self._stored.owned_by(user_jid)) >= self._max_per_user:
                raise GatewayError(
                    f"you have {self._max_per_user} hooks, the most allowed; delete one first",
                    "not-allowed",
                )
            await self._directory.create(hook)
        return CommandResult(
            f"Created {hook.name}@{self._domain}.\n"
            f"Inbound URL: {self.inbound_url(hook.name)}\n"
            f"Secret: {hook.secret}\n"
            "Keep the secret now: it is not shown again. Post with"
            " 'Authorization: Bearer <secret>' or a Standard Webhooks signature."
        )

    async def list(self, user_jid: str, _values: dict[str, Any]) -> CommandResult:
        return CommandResult(await self._listing(user_jid))

    async def rotate_form(self, user_jid: str) -> Form:
        return Form(
            title="Rotate a hook's secret",
            instructions="The old secret stops working at once; the new one is shown once.",
            fields=await self._choice(user_jid),
        )

    async def rotate(self, user_jid: str, values: dict[str, Any]) -> CommandResult:
        name = str(values.get("name") or "")
        if not name:
            return CommandResult(NONE_OWNED)
        secret = new_secret()
        if not await self._stored.set_secret(name, user_jid, secret):
            raise NotFound(f"you have no hook named {name}")
        return CommandResult(
            f"New secret for {name}@{self._domain}: {secret}\n"
            f"Inbound URL: {self.inbound_url(name)}\nKeep it now: it is not shown again."
        )

    async def delete_form(self, user_jid: str) -> Form:
        choice = await self._choice(user_jid)
        return Form(
            title="Delete a hook",
            instructions="Posts to its URL are refused from now on.",
            fields=(*choice, CONFIRM_DELETE) if choice else (),
        )

    async def delete(self, user_jid: str, values: dict[str, Any]) -> CommandResult:
        name = str(values.get("name") or "")
        if not name:
            return CommandResult(NONE_OWNED)
        if not values.get("confirm"):
            return CommandResult(f"{name} was not deleted (not confirmed).")
        hook = await self._stored.get(name)
        if hook is None or hook.owner != user_jid or not await self._stored.delete(name, user_jid):
            raise NotFound(f"you have no hook named {name}")
        await self._deleted(hook)
        return CommandResult(f"Deleted {name}@{self._domain}.")

    def inbound_url(self, name: str) -> str:
        return f"{self._public_url}/hooks/{name}"

    async def _listing(self, user_jid: str) -> str:
        hooks = await self._directory.usable_by(user_jid)
        if not hooks:
            return "You have no hooks. Create one with 'Create a hook'."
        lines = []
        for hook in hooks:
            where = ", ".join(hook.recipients + hook.rooms)
            line = f"{hook.name}@{self._domain}: {self.inbound_url(hook.name)} → {where}"
            if hook.url:
                line += f"; your messages go to {hook.url}"
            if hook.from_config:
                line += " (set by the admin)"
            elif hook.owner != user_jid:
                line += f" (owned by {hook.owner})"
            lines.append(line)
        return "\n".join(lines)

    async def _choice(self, user_jid: str) -> tuple[FormField, ...]:
        """A choice among the user's own hooks (none: the run says there is nothing to do)."""
        hooks = await self._stored.owned_by(user_jid)
        if not hooks:
            return ()
        return (
            FormField(
                "name",
                "Hook",
                "list-single",
                value=hooks[0].name,
                required=True,
                options=tuple((hook.name, f"{hook.name}@{self._domain}") for hook in hooks),
            ),
        )
