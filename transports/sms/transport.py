"""The SMS transport: phone numbers as contacts, one Twilio number per user.

Sending goes through the durable outbox (``send`` only validates and enqueues; ``deliver``
makes one attempt), because Twilio may be down when the user writes and nothing accepted may
be lost. Delivery is known only later, from Twilio's status callbacks (see ``webhooks.py``).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Any, ClassVar

from mappings.message_ids import MessageIdMapping
from mappings.outbox import RetryPolicy
from mappings.registrations import AddressTaken, Registration
from mappings.sms_messages import SentSms, SmsMessages
from transports.base import (
    AddressError,
    Command,
    CommandResult,
    Conflict,
    Delivered,
    DeliveryFailed,
    Forbidden,
    Form,
    FormField,
    GatewayError,
    NotFound,
    OutboundMessage,
    Pending,
    Registered,
    RegistrationRequired,
    RetryLater,
    Transport,
    TransportHost,
)
from transports.jid_escaping import unescape_localpart
from transports.media import ServedMedia, served_media
from transports.sms.client import TwilioClient, TwilioError, TwilioUnreachable
from transports.sms.message_refs import SmsMessageRefs, recorded_as
from transports.sms.numbers import format_for_people, normalise_number
from transports.sms.outbound import compose
from transports.sms.settings import SmsSettings
from transports.sms.twilio_errors import describe_error
from transports.sms.webhooks import INBOUND_PATH, REFUSALS, STATUS_PATH, TwilioWebhooks

if TYPE_CHECKING:
    from transports.settings import TransportSettings

log = logging.getLogger(__name__)

BIND_NODE = "sms-bind-number"


class SmsTransport(Transport):
    name: ClassVar[str] = "sms"
    gateway_type: ClassVar[str] = "sms"
    title: ClassVar[str] = "SMS"
    prompt_desc: ClassVar[str] = "Enter the phone number of the contact"
    prompt_label: ClassVar[str] = "Phone number"
    rejection_reasons: ClassVar[tuple[str, ...]] = REFUSALS
    #: Twilio outages are usually minutes; keep trying for a day, at most every 10 minutes.
    retry_policy = RetryPolicy(base_seconds=2.0, cap_seconds=600.0, give_up_after_seconds=86400.0)

    settings: SmsSettings
    media: ServedMedia

    def __init__(self, settings: TransportSettings, host: TransportHost) -> None:
        assert isinstance(settings, SmsSettings)
        super().__init__(settings, host)
        self.twilio = TwilioClient(
            settings.account_sid,
            settings.auth_token.get_secret_value(),
            settings.api_base_url,
            settings.request_timeout_seconds,
        )
        self.sent = SmsMessages(host.store)
        self.refs = SmsMessageRefs(self.name, host.store)
        self.webhooks = TwilioWebhooks(self)

    async def prepare(self) -> None:
        await self.sent.migrate()

    async def start(self) -> None:
        await self.twilio.open()
        self.media = served_media(self.host)
        self.host.add_route("POST", INBOUND_PATH, self.webhooks.inbound)
        self.host.add_route("POST", STATUS_PATH, self.webhooks.status)

    async def stop(self) -> None:
        await self.twilio.close()

    # -- addressing ---------------------------------------------------------------------------

    def parse_address(self, localpart: str) -> str:
        return normalise_number(unescape_localpart(localpart), self.settings.default_region)

    def format_address(self, address: str) -> str:
        return address

    @classmethod
    def own_address(cls, settings: Any, text: str) -> str:
        """The user's Twilio number, normalised as contacts are (``portway mappings add``)."""
        return normalise_number(text, settings.default_region)

    def display_name(self, address: str) -> str:
        return format_for_people(address)

    # -- registration -------------------------------------------------------------------------

    def registration_form(self, user_jid: str, current: Registration | None) -> Form:
        number = current.address if current else None
        if self.settings.self_service:
            instructions = (
                "Enter the Twilio number to send your texts from. It must belong to the "
                "gateway's Twilio account and not be taken by another user."
            )
        else:
            instructions = (
                "An administrator assigns your number. Confirm to keep the one you have."
                if number
                else "An administrator assigns numbers: ask them to bind one to your address."
            )
        field = FormField(
            "number",
            "Your phone number",
            value=number,
            required=self.settings.self_service,
            desc="In international form, e.g. +15550001111",
        )
        return Form(title="Register with SMS", instructions=instructions, fields=(field,))

    async def register(self, user_jid: str, values: dict[str, Any]) -> Registered:
        current = await self.host.store.registrations.get(self.name, user_jid)
        current_number = current.address if current else None
        typed = str(values.get("number") or "").strip()
        number = self.own_address(self.settings, typed) if typed else current_number
        if number is None:
            if self.settings.self_service:
                raise AddressError("Enter the Twilio number you want to send from.")
            raise Forbidden("An administrator assigns numbers: ask them to bind one for you.")
        if number == current_number:
            return Registered(address=number, data=current.data if current else {})
        if not self.settings.self_service:
            raise Forbidden("Only an administrator can change your number.")
        holder = await self.host.store.registrations.by_address(self.name, number)
        if holder is not None and holder.user_jid != user_jid:
            raise Conflict(f"{number} is already in use by another user.")
        if not await self._owned(number):
            raise NotFound(f"{number} is not a number of this gateway's Twilio account.")
        return Registered(address=number)

    async def unregistered(self, user_jid: str) -> None:
        await self.sent.forget_user(user_jid)

    def commands(self) -> list[Command]:
        form = Form(
            title="Bind a phone number",
            instructions="Give a user the Twilio number they send their texts from.",
            fields=(
                FormField("jid", "User (bare JID)", type="jid-single", required=True),
                FormField("number", "Phone number", required=True, desc="e.g. +15550001111"),
            ),
        )
        return [
            Command(
                node=BIND_NODE,
                name="Bind a phone number to a user",
                form=form,
                run=self._bind_number,
                admin_only=True,
                needs_registration=False,
            ),
            self.refs.settings_command(),
        ]

    async def _bind_number(self, admin_jid: str, values: dict[str, Any]) -> CommandResult:
        user_jid = str(values.get("jid") or "").strip().lower()
        if not user_jid or "@" not in user_jid or "/" in user_jid:
            raise AddressError(f"{user_jid!r} is not a bare JID (user@domain).")
        if not self.host.is_allowed(user_jid):
            raise Forbidden(f"{user_jid} is not in a domain allowed to use this gateway.")
        number = self.own_address(self.settings, str(values.get("number") or ""))
        current = await self.host.store.registrations.get(self.name, user_jid)
        try:
            await self.host.store.registrations.save(
                Registration(self.name, user_jid, number, current.data if current else {})
            )
        except AddressTaken as exc:
            raise Conflict(f"{number} is already bound to {exc.owner}.") from None
        log.info("admin %s bound %s to %s", admin_jid, number, user_jid)
        return CommandResult(f"{number} is now bound to {user_jid}.")

    async def _owned(self, number: str) -> bool:
        try:
            return await self.twilio.owns_number(number)
        except (TwilioError, TwilioUnreachable) as exc:
            log.warning("cannot check %s with Twilio: %s", number, exc)
            raise GatewayError(
                "Twilio cannot be asked right now; try again later.",
                "service-unavailable",
                "wait",
            ) from None

    # -- sending ------------------------------------------------------------------------------

    async def send(self, message: OutboundMessage) -> None:
        if not self.host.is_allowed(message.user_jid):
            raise Forbidden("Your server is not allowed to use this gateway.")
        registration = await self.host.store.registrations.get(self.name, message.user_jid)
        if registration is None or not registration.address:
            raise RegistrationRequired(
                "You have no phone number to send from: register, or ask an administrator "
                "to bind one to your address."
            )
        if message.refers is not None and message.refers.kind == "retraction":
            notice = self.refs.cannot_recall(message, self.display_name(message.contact))
            await self.host.deliver(notice)
            return
        text = await self.refs.text_of(message)
        if text is None:
            return  # a reaction the user does not send, or one that changes nothing
        sms = compose(dataclasses.replace(message, body=text))
        await self.host.enqueue(
            message,
            {"from": registration.address, "body": sms.body, "media": list(sms.media_urls)},
        )

    async def deliver(self, pending: Pending) -> Delivered:
        already = await self.sent.by_outbox_id(pending.item_id)
        if already is not None:  # sent before a crash; never text twice
            return Delivered(already.sid, final=False)
        message = pending.message
        try:
            sent = await self.twilio.send_message(
                from_=str(pending.data["from"]),
                to=message.contact,
                body=str(pending.data.get("body", "")),
                media_urls=[str(url) for url in pending.data.get("media", ())],
                status_callback=f"{self.host.public_url}{STATUS_PATH}",
            )
        except TwilioUnreachable as exc:
            raise RetryLater(str(exc)) from None
        except TwilioError as exc:
            if exc.temporary:
                raise RetryLater(f"Twilio answered HTTP {exc.status}: {exc.message}") from None
            raise DeliveryFailed(
                f"Twilio refused the message: {describe_error(exc.code, exc.message)}"
            ) from None
        await self.sent.record(
            SentSms(
                sid=sent.sid,
                outbox_id=pending.item_id,
                user_jid=message.user_jid,
                from_jid=message.from_jid,
                contact=message.contact,
                xmpp_id=message.xmpp_id,
                receipt_requested=message.receipt_requested,
                status=sent.status or "queued",
                error_code=None,
            )
        )
        xmpp_id, text = recorded_as(message, str(pending.data.get("body", "")))
        await self.host.store.message_ids.record(
            MessageIdMapping(
                self.name, message.user_jid, message.contact, "out", xmpp_id, sent.sid, body=text
            )
        )
        return Delivered(sent.sid, final=False)
