"""Webhooks: named hooks that services post into, and that users' messages go out through.

Inbound posts are handled by :mod:`transports.webhook.inbound`; a user's message to a hook
with a ``url`` is stored in the outbox by :meth:`send` and POSTed by :meth:`deliver`, whose
outcome also sets the hook contact's presence (available, or ``xa`` naming the error).
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from aiohttp import web

from mappings.hooks import HOOK_MIGRATIONS, Hook, Hooks
from mappings.message_ids import MessageIdMapping
from mappings.outbox import RetryPolicy
from mappings.registrations import Registration
from transports.base import (
    AddressError,
    Command,
    Delivered,
    DeliveryFailed,
    Forbidden,
    Form,
    GatewayError,
    NotFound,
    OutboundMessage,
    Pending,
    RegistrationRequired,
    RetryLater,
    Transport,
    TransportHost,
    UserPresence,
)
from transports.events import ContactPresence, InboundMessage, RoomLeave
from transports.webhook.commands import HookCommands
from transports.webhook.directory import HookDirectory
from transports.webhook.inbound import REFUSALS, HookEndpoint
from transports.webhook.outbound import HookClient, outcome, request_body, request_headers
from transports.webhook.rate_limit import RateLimiter
from transports.webhook.settings import HOOK_NAME_PATTERN, WebhookSettings

log = logging.getLogger(__name__)


class WebhookTransport(Transport):
    name = "webhook"
    gateway_type = "http-ws"
    title = "Webhooks"
    prompt_desc = "Enter the name of a hook"
    prompt_label = "Hook"
    rejection_reasons = tuple(REFUSALS.values())
    #: who may write to a hook is the hook's to say (:meth:`send`): the JIDs a config hook
    #: names need no registration, since the config already authorises them
    requires_registration = False

    settings: WebhookSettings

    def __init__(self, settings: WebhookSettings, host: TransportHost) -> None:
        super().__init__(settings, host)
        self.hooks = Hooks(host.store)
        self.limiter = RateLimiter()
        # The admin's hooks and users' hooks may reach different networks.
        self.admin_client = HookClient(settings.request_timeout_seconds, settings.hook_networks)
        self.user_client = HookClient(settings.request_timeout_seconds, settings.user_hook_networks)
        # hook name -> why its deliveries fail; mirrors the store, to send presence on change
        self._failing: dict[str, str] = {}
        self.reload(settings)

    def reload(self, settings: WebhookSettings) -> None:
        """The config's hooks, limits and retry horizon: at start, and again on SIGHUP. The
        HTTP clients keep their timeout and networks until a restart."""
        self.settings = settings
        self.retry_policy = RetryPolicy(give_up_after_seconds=settings.retry_hours * 3600)
        self.directory = HookDirectory(
            settings.hooks, self.hooks, self.host.is_allowed, settings.user_hook_networks
        )
        self.endpoint = HookEndpoint(settings, self.host, self.directory, self.limiter)
        self._commands = HookCommands(
            self.directory,
            self.hooks,
            settings.jid,
            self.host.public_url,
            settings.max_hooks_per_user,
            self._deleted,
        )

    async def prepare(self) -> None:
        await self.host.store.migrate("webhook", HOOK_MIGRATIONS)

    async def start(self) -> None:
        self._failing = await self.hooks.failing()
        self.host.add_route("POST", "/hooks/{name}", self._posted)

    async def _posted(self, request: web.Request) -> web.StreamResponse:
        # Through the attribute, not a bound method kept by the router: a reload replaces it.
        return await self.endpoint.handle(request)

    async def stop(self) -> None:
        await self.admin_client.close()
        await self.user_client.close()

    # -- addressing -----------------------------------------------------------------------------

    def parse_address(self, localpart: str) -> str:
        name = localpart.strip().lower()
        if not re.match(HOOK_NAME_PATTERN, name):
            raise AddressError(f"{localpart!r} is not a hook name")
        return name

    def format_address(self, address: str) -> str:
        return address

    def commands(self) -> list[Command]:
        return self._commands.commands()

    def registration_form(self, user_jid: str, current: Registration | None) -> Form:
        return Form(
            title="Register with Webhooks",
            instructions=(
                f"{self.settings.jid} needs no registration for the hooks its admin set up"
                " for you. Register to create hooks of your own, and to write to hooks that"
                " other users made for you."
            ),
        )

    async def unregistered(self, user_jid: str) -> None:
        for hook in await self.hooks.owned_by(user_jid):
            await self.hooks.delete(hook.name, user_jid)
            await self._deleted(hook)

    # -- users' messages out ---------------------------------------------------------------------

    async def send(self, message: OutboundMessage) -> None:
        hook = await self.directory.get(message.contact)
        if hook is None:
            raise NotFound(f"there is no hook named {message.contact}")
        if not hook.may_send(message.user_jid):
            raise Forbidden("only the hook's owner and the JIDs it posts to may write to it")
        registrations = self.host.store.registrations
        if not hook.from_config and await registrations.get(self.name, message.user_jid) is None:
            raise RegistrationRequired(
                f"register with {self.settings.jid} first (in your client: service discovery,"
                " or the command 'Register')"
            )
        if not hook.url:
            raise GatewayError(
                f"{hook.name} has no url: it only posts into XMPP", "service-unavailable"
            )
        post_id = uuid.uuid4().hex
        refers_to = None
        if message.refers is not None:
            earlier = await self.host.store.message_ids.find(
                self.name, message.user_jid, message.refers.target
            )
            refers_to = earlier.remote_id if earlier and earlier.contact == hook.name else None
        data = {"hook": hook.name, "post_id": post_id, "sent_at": time.time()}
        if await self.host.enqueue(message, {**data, "refers_to": refers_to}):
            # what a later correction, reaction or reply of the user's names this post by
            await self.host.store.message_ids.record(
                MessageIdMapping(
                    self.name,
                    message.user_jid,
                    hook.name,
                    "out",
                    message.xmpp_id,
                    post_id,
                    body=message.body,
                )
            )

    async def deliver(self, pending: Pending) -> Delivered:
        message, data = pending.message, pending.data
        hook = await self.directory.get(str(data["hook"]))
        if hook is None or not hook.url:
            raise DeliveryFailed("the hook was deleted, or no longer has a url")
        if not hook.may_send(message.user_jid):
            raise DeliveryFailed("you may no longer write to this hook")
        post_id = str(data["post_id"])
        body = request_body(
            message,
            f"{hook.name}@{self.settings.jid}",
            post_id,
            float(data["sent_at"]),
            data.get("refers_to"),
        )
        try:
            client = self.admin_client if hook.from_config else self.user_client
            answer = await client.post(
                hook.url, body, request_headers(hook.secret, post_id, body, time.time())
            )
            reply = outcome(answer, time.time())
        except (RetryLater, DeliveryFailed) as error:
            await self._set_health(hook, error.reason)
            raise
        await self._set_health(hook, None)
        if reply:
            await self.host.deliver(
                InboundMessage(message.user_jid, hook.name, reply, thread=message.thread),
                dedup_key=f"reply|{hook.name}|{post_id}",
                durable=True,
            )
        return Delivered(remote_id=post_id)

    # -- presence of hook contacts ---------------------------------------------------------------

    async def user_presence(self, presence: UserPresence) -> None:
        """A user came online: tell them which of their hooks are failing."""
        if not presence.available:
            return
        user = presence.from_jid.split("/", 1)[0]
        if presence.contact is None:
            hooks = await self.directory.usable_by(user)
        else:
            hook = await self.directory.get(presence.contact)
            hooks = [hook] if hook and hook.may_send(user) else []
        for hook in hooks:
            await self.host.deliver(self.presence_of(hook, user))

    def presence_of(self, hook: Hook, user_jid: str) -> ContactPresence:
        failing = self._failing.get(hook.name)
        if failing:
            return ContactPresence(user_jid, hook.name, True, "xa", f"failing: {failing}")
        return ContactPresence(user_jid, hook.name, True)

    async def _set_health(self, hook: Hook, failing: str | None) -> None:
        if self._failing.get(hook.name) == failing:
            return
        if failing is None:
            self._failing.pop(hook.name, None)
        else:
            self._failing[hook.name] = failing
        await self.hooks.set_health(hook.name, failing)
        for user in dict.fromkeys((hook.owner, *hook.deliver_to)):
            await self.host.deliver(self.presence_of(hook, user))

    async def _deleted(self, hook: Hook) -> None:
        """A hook is gone: forget its rate, show it offline, and leave its rooms."""
        self.limiter.forget(hook.name)
        self._failing.pop(hook.name, None)
        for user in dict.fromkeys((hook.owner, *hook.deliver_to)):
            await self.host.deliver(ContactPresence(user, hook.name, available=False))
        for room in hook.rooms:
            await self.host.deliver(RoomLeave(room, hook.name, hook.nick or hook.name))
        log.info("hook %s deleted", hook.name)
