"""The demo's outside world: a catch-all smarthost, a Twilio simulator and a hook endpoint.

The demo shows all four networks on one machine, with no account anywhere, so the parties
Portway talks to are played by the stand-ins the end-to-end tests use (tests/support): what
the demo shows is what the tests check. Everything they receive is printed on the demo's
terminal and kept under the demo's folder, for a person (or a test) to read afterwards:

- ``mailbox/NNNN.eml``: every mail Portway relays (the smarthost accepts any recipient);
- ``phone/texts.log``: every text Portway sends through the simulator, one line each;
- ``hooks/received.log``: every POST to the hook's ``url``, one JSON object a line.

A pretend phone texts the demo user with ``POST /text`` on the phone port (form fields
``From`` and ``Body``): the simulator signs that as Twilio would and posts it to Portway.

Run by demo/run with ``PYTHONPATH=tests``; the secrets come from the environment
(``TWILIO_AUTH_TOKEN``, ``HOOK_TOKEN``), never from the command line, where any
local user could read them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from pathlib import Path
from typing import TypeVar

import aiohttp
from aiohttp import web
from support.fake_twilio import ACCOUNT_SID, FakeMessage, FakeTwilio
from support.hook_endpoint import Received, ScriptedEndpoint
from support.smtp_sink import ReceivedMail, SmtpSink

#: The pretend phone's number when ``POST /text`` names none.
FRIEND_NUMBER = "+15557654321"
#: How often new mails, texts and posts are looked for (the stand-ins only keep lists).
POLL_SECONDS = 0.1

Item = TypeVar("Item")


def say(who: str, text: str) -> None:
    """One line on the demo's terminal, flushed at once so it shows as it happens."""
    print(f"[{who}] {text}", flush=True)


async def follow(items: list[Item], show: Callable[[Item], Awaitable[None]]) -> None:
    """Show each item a stand-in appends to ``items``, in order, as it comes."""
    seen = 0
    while True:
        while seen < len(items):
            await show(items[seen])
            seen += 1
        await asyncio.sleep(POLL_SECONDS)


class OutsideWorld:
    """The three stand-ins, and where what they receive is kept."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.state: Path = args.state
        self.number: str = args.number
        self.inbound_url: str = args.inbound_url
        self.smarthost = SmtpSink(port=args.smarthost_port)
        self.twilio = FakeTwilio(
            account_sid=args.account_sid,
            auth_token=os.environ["TWILIO_AUTH_TOKEN"],
            owned_numbers=[args.number],
            port=args.twilio_port,
        )
        self.hook = ScriptedEndpoint(os.environ["HOOK_TOKEN"], port=args.hook_port)
        self.phone_port: int = args.phone_port
        self._phone: web.AppRunner | None = None
        self._mails = 0

    async def start(self) -> None:
        for folder in ("mailbox", "phone", "hooks"):
            (self.state / folder).mkdir(parents=True, exist_ok=True)
        await self.smarthost.start()
        await self.twilio.start()
        await self.hook.up()
        app = web.Application()
        app.router.add_post("/text", self._text_the_user)
        self._phone = web.AppRunner(app, access_log=None)
        await self._phone.setup()
        await web.TCPSite(self._phone, "127.0.0.1", self.phone_port).start()

    async def stop(self) -> None:
        if self._phone is not None:
            await self._phone.cleanup()
        await self.hook.down()
        await self.twilio.stop()
        await self.smarthost.stop()

    def followers(self) -> list[Coroutine[None, None, None]]:
        return [
            follow(self.smarthost.received, self._show_mail),
            follow(self.twilio.messages, self._show_text),
            follow(self.hook.received, self._show_post),
        ]

    # -- what Portway sends out ---------------------------------------------------------------

    async def _show_mail(self, mail: ReceivedMail) -> None:
        self._mails += 1
        path = self.state / "mailbox" / f"{time.strftime('%Y%m%d-%H%M%S')}-{self._mails:03d}.eml"
        await asyncio.to_thread(path.write_bytes, mail.data)
        subject = mail.message["Subject"] or "(no subject)"
        say(
            "smarthost",
            f"mail from {mail.mail_from} to {', '.join(mail.rcpt_tos)}, "
            f"subject {subject!r}: saved as {path}",
        )

    async def _show_text(self, text: FakeMessage) -> None:
        line = f"{text.to} got a text from {text.from_}: {text.body}"
        await asyncio.to_thread(_append, self.state / "phone" / "texts.log", line)
        say("sms simulator", line)
        if text.status_callback:
            # As Twilio does once the carrier confirms: the sender then gets a receipt.
            try:
                await self.twilio.post_status(text.sid, "delivered")
            except (aiohttp.ClientError, OSError) as error:
                say("sms simulator", f"could not tell Portway {text.sid} was delivered: {error}")

    async def _show_post(self, post: Received) -> None:
        try:
            shown: object = post.json
        except ValueError:
            shown = post.body.decode("utf-8", "replace")
        record = {"signature_ok": post.signature_ok, "answered": post.status, "body": shown}
        line = json.dumps(record, ensure_ascii=False)
        await asyncio.to_thread(_append, self.state / "hooks" / "received.log", line)
        verdict = "signature ok" if post.signature_ok else "BAD SIGNATURE"
        say("hook endpoint", f"POST ({verdict}): {line}")

    # -- the pretend phone --------------------------------------------------------------------

    async def _text_the_user(self, request: web.Request) -> web.Response:
        form = await request.post()
        # curl -d turns an unencoded "+" into a space: take " 1555…" as the "+1555…" meant.
        sender = "+" + str(form.get("From") or FRIEND_NUMBER).strip().lstrip("+")
        body = str(form.get("Body") or "")
        if not body:
            return web.Response(status=400, text="say something: -d Body='hello'\n")
        status, _ = await self.twilio.post_inbound(self.inbound_url, sender, self.number, body)
        if status != 200:
            say("sms simulator", f"Portway answered {status} to a text from {sender}")
            return web.Response(status=502, text=f"Portway answered {status}\n")
        say("sms simulator", f"{sender} texted {self.number}: {body}")
        return web.Response(text=f"texted {self.number} from {sender}\n")


def _append(path: Path, line: str) -> None:
    with path.open("a", encoding="utf-8") as file:
        file.write(line + "\n")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--state", type=Path, required=True, help="the demo's folder")
    parser.add_argument("--smarthost-port", type=int, required=True)
    parser.add_argument("--twilio-port", type=int, required=True)
    parser.add_argument("--phone-port", type=int, required=True)
    parser.add_argument("--hook-port", type=int, required=True)
    parser.add_argument("--number", required=True, help="the demo user's Twilio number")
    parser.add_argument("--account-sid", default=ACCOUNT_SID)
    parser.add_argument("--inbound-url", required=True, help="Portway's /sms/inbound URL")
    return parser.parse_args(argv)


async def main(argv: Sequence[str] | None = None) -> None:
    world = OutsideWorld(parse_args(argv))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await world.start()
    followers = [asyncio.create_task(f) for f in world.followers()]
    await stop.wait()
    for task in followers:
        task.cancel()
    await asyncio.gather(*followers, return_exceptions=True)
    await world.stop()


if __name__ == "__main__":
    asyncio.run(main())
