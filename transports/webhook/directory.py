"""Where hooks are looked up: the config's, then those users created (one namespace).

A user-created hook may only reach JIDs and rooms of the gateway's allowed domains, so that a
hook cannot be made into a way for anyone holding its URL to spam strangers; and its url may
only point at public addresses (or the networks the admin allows users), so that it cannot be
made into a way into the gateway's own network. The url is checked when the hook is created,
to say so at once, and again on every connection (:mod:`transports.egress`), because what a
name resolves to can change.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from yarl import URL

from mappings.hooks import Hook, HookNameTaken, Hooks
from transports.base import Conflict, GatewayError
from transports.egress import Network, RefusedDestination, resolve_allowed
from transports.webhook.outbound import REFUSED_URL
from transports.webhook.settings import HOOK_NAME_PATTERN, HookSettings

_JID = re.compile(r"^[^@/\s]+@[^@/\s]+$")
#: JIDs and rooms one user's hook may post to. Each post is stored once per target: a hook
#: of 2,000 targets turned one post into 2,000 events (60 posts a minute, 20 hooks a user).
MAX_HOOK_TARGETS = 50


def config_hook(settings: HookSettings) -> Hook:
    return Hook(
        name=settings.name,
        owner=settings.owner,
        secret=settings.token.get_secret_value(),
        deliver_to=tuple(settings.deliver_to),
        rooms=tuple(settings.rooms),
        url=settings.url,
        nick=settings.nick,
        rate_per_minute=settings.rate_per_minute,
        from_config=True,
        update_alerts=settings.update_alerts,
    )


def check_name(name: str) -> str:
    name = name.strip().lower()
    if not re.match(HOOK_NAME_PATTERN, name):
        raise GatewayError(
            "a hook name is 1 to 64 of a-z, 0-9, '.', '_' and '-', starting with a letter or digit",
            "not-acceptable",
            "modify",
        )
    return name


def check_url(url: str) -> str | None:
    url = url.strip()
    if not url:
        return None
    if not re.match(r"^https?://[^/\s]+(/\S*)?$", url):
        raise GatewayError(f"not an http(s) URL: {url}", "not-acceptable", "modify")
    return url


async def check_destination(url: str, allowed: Sequence[Network]) -> None:
    """Refuse ``url`` when its host is, or resolves to, an address the gateway refuses.

    A name that does not resolve now is let through: DNS may be late, and every connection is
    checked anyway.
    """
    try:
        parsed = URL(url)
        host, port = parsed.raw_host, parsed.port
    except ValueError:
        host, port = None, None
    if not host or port is None:
        raise GatewayError(f"not an http(s) URL: {url}", "not-acceptable", "modify")
    try:
        await resolve_allowed(host, port, allowed)
    except RefusedDestination:
        advice = f"{REFUSED_URL}; use a public address"
        raise GatewayError(advice, "not-allowed", "modify") from None
    except OSError:
        return


def parse_jids(text: str) -> tuple[str, ...]:
    """JIDs one per line (or separated by spaces or commas), lower-cased, in order, once."""
    jids: list[str] = []
    for item in re.split(r"[\s,]+", text.strip()):
        if not item:
            continue
        if not _JID.match(item):
            raise GatewayError(f"not a bare JID: {item}", "jid-malformed", "modify")
        if item.lower() not in jids:
            jids.append(item.lower())
    return tuple(jids)


class HookDirectory:
    def __init__(
        self,
        configured: list[HookSettings],
        stored: Hooks,
        is_allowed: Callable[[str], bool],
        user_networks: Sequence[Network] = (),
    ) -> None:
        self._configured = {settings.name: config_hook(settings) for settings in configured}
        self._stored = stored
        self._is_allowed = is_allowed
        self._user_networks = tuple(user_networks)

    async def get(self, name: str) -> Hook | None:
        return self._configured.get(name) or await self._stored.get(name)

    async def usable_by(self, user_jid: str) -> list[Hook]:
        """Hooks the user owns or receives from: the ones in their roster."""
        hooks = list(self._configured.values()) + await self._stored.all()
        return [hook for hook in hooks if hook.may_send(user_jid)]

    async def owned_by(self, user_jid: str) -> list[Hook]:
        """Hooks the user may manage with commands (config hooks are the admin's)."""
        return await self._stored.owned_by(user_jid)

    async def all(self) -> list[Hook]:
        return list(self._configured.values()) + await self._stored.all()

    async def create(self, hook: Hook) -> Hook:
        """Store a user hook after checking its name, targets and url."""
        if len(hook.deliver_to) + len(hook.rooms) > MAX_HOOK_TARGETS:
            raise GatewayError(
                f"a hook may post to at most {MAX_HOOK_TARGETS} targets (JIDs and rooms)",
                "not-acceptable",
                "modify",
            )
        for jid in hook.deliver_to:
            if jid != hook.owner and not self._is_allowed(jid):
                raise GatewayError(
                    f"{jid} is not on a domain this gateway serves", "not-allowed", "modify"
                )
        for room in hook.rooms:
            service = room.partition("@")[2]
            parent = service.partition(".")[2]
            if not self._is_allowed(room) and not (parent and self._is_allowed(f"x@{parent}")):
                raise GatewayError(
                    f"{room} is not a room on a domain this gateway serves", "not-allowed", "modify"
                )
        if hook.url:
            await check_destination(hook.url, self._user_networks)
        if hook.name in self._configured:
            raise Conflict(f"the name {hook.name} is taken; choose another")
        try:
            await self._stored.create(hook)
        except HookNameTaken:
            raise Conflict(f"the name {hook.name} is taken; choose another") from None
        return hook
