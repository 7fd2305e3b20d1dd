"""Reactions, replies, corrections, retractions and shared files between XMPP and email.

Alice's slixmpp client sends the real XEP stanzas (XEP-0444, 0461 with its 0428 fallback,
0308, 0424, and a file uploaded to Prosody's mod_http_file_share then shared by OOB) through
Prosody to ``portway run``; mail goes out to the SMTP sink (the smarthost) and comes in over
SMTP to the gateway's listener, as Juliet's server would send it.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from xml.sax.saxutils import quoteattr

import pytest
from aiohttp import web
from slixmpp import JID, Message
from slixmpp.xmlstream import StanzaBase
from support.fixture_types import ConnectXmpp, MakeProsody
from support.gateway import GatewayProcess
from support.mail_world import (
    ALICE,
    JULIET,
    JULIET_JID,
    MAIL,
    SECRET,
    email_gateway,
    failure_report,
    send_mail,
)
from support.ports import free_port
from support.smtp_sink import ReceivedMail, SmtpSink
from support.xmpp_client import XmppClient

from transports.email.refers_text import CORRECTION_LINE

pytestmark = pytest.mark.e2e

UPLOAD = "upload.example.org"
ALICE_ADDRESS = f"alice@{MAIL}"
NS_REACTIONS = "urn:xmpp:reactions:0"
NS_REPLY = "urn:xmpp:reply:0"
NS_CORRECT = "urn:xmpp:message-correct:0"
ROSE = bytes(range(256)) * 8


@dataclass
class World:
    gateway: GatewayProcess
    sink: SmtpSink
    alice: XmppClient
    smtp_port: int
    http_port: int

    async def mail_in(self, message: EmailMessage | bytes) -> None:
        raw = message if isinstance(message, bytes) else message.as_bytes()
        assert (await send_mail(self.smtp_port, raw)).startswith("2.0.0")

    def send(self, inner: str, body: str = "", msg_id: str = "", receipt: bool = False) -> str:
        """Alice sends a chat message to Juliet with ``inner`` XML; returns its id."""
        msg_id = msg_id or self.alice.xmpp.new_id()
        text = f"<body>{_escape(body)}</body>" if body else ""
        ask = '<request xmlns="urn:xmpp:receipts"/>' if receipt else ""
        self.alice.send_raw(
            f"<message to={quoteattr(JULIET_JID)} id={quoteattr(msg_id)} type='chat'>"
            f"{text}{inner}{ask}</message>"
        )
        return msg_id

    async def sent(self, count: int) -> list[ReceivedMail]:
        return await self.sink.wait_for(count, timeout=20)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def juliet_mail(
    text: str, message_id: str, subject: str = "Balcony", **headers: str
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = f"Juliet <{JULIET}>"
    message["To"] = ALICE_ADDRESS
    message["Subject"] = subject
    message["Message-ID"] = message_id
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(text)
    return message


def reaction_mail(emojis: str, message_id: str, in_reply_to: str) -> EmailMessage:
    """An RFC 9078 reaction, as Delta Chat sends it: one text/plain part, disposition reaction."""
    message = juliet_mail("", message_id, "Re: Balcony", In_Reply_To=in_reply_to)
    message.set_content(emojis + "\n", charset="utf-8", disposition="reaction")
    return message


def child(name: str) -> Callable[[StanzaBase], bool]:
    def matches(stanza: StanzaBase) -> bool:
        return (
            isinstance(stanza, Message)
            and stanza["type"] != "error"
            and stanza.xml.find(name) is not None
        )

    return matches


def body_of(mail: ReceivedMail) -> str:
    part = mail.message.get_body(("plain",))
    assert part is not None
    text = part.get_content()
    assert isinstance(text, str)
    return text.replace("\r\n", "\n").strip()


def file_share() -> str:
    return "\n".join(
        [
            f'http_default_host = "{UPLOAD}"',
            f'Component "{UPLOAD}" "http_file_share"',
            "    http_file_share_size_limit = 1000000",
        ]
    )


@contextlib.asynccontextmanager
async def running(
    tmp_path: Path, make_prosody: MakeProsody, xmpp_client: ConnectXmpp
) -> AsyncIterator[World]:
    http_port = free_port()
    prosody = make_prosody(
        components={MAIL: SECRET},
        users={"alice": "alice-pw"},
        extra_config=file_share(),
        http_port=http_port,
    )
    smtp_port = free_port()
    email = {
        "retry_base_seconds": 0.3,
        # Prosody's upload service is at 127.0.0.1 here, not at a name under example.org
        "attachment_sources": [f"http://127.0.0.1:{http_port}/file_share/"],
        "allow_networks": ["127.0.0.0/8"],
    }
    async with SmtpSink() as sink:
        gateway = email_gateway(tmp_path / "gateway", prosody, smtp_port, sink.port, email)
        bound = gateway.cli("mappings", "add", "email", ALICE, "alice")
        assert bound.returncode == 0, bound.stderr
        await gateway.astart()
        try:
            alice = await xmpp_client(ALICE, "alice-pw", prosody)
            yield World(gateway, sink, alice, smtp_port, http_port)
        finally:
            gateway.kill()


@pytest.fixture
async def world(
    tmp_path: Path, make_prosody: MakeProsody, xmpp_client: ConnectXmpp
) -> AsyncIterator[World]:
    async with running(tmp_path, make_prosody, xmpp_client) as made:
        yield made


async def test_reactions_are_rfc_9078_mails_both_ways_across_a_restart(world: World) -> None:
    await world.mail_in(juliet_mail("Wherefore art thou?", "<m1@capulet.lit>"))
    first = await world.alice.expect_message(from_=JULIET_JID)

    # Alice reacts to Juliet's mail: a reaction mail answering it
    world.send(
        f"<reactions xmlns='{NS_REACTIONS}' id={quoteattr(first['id'])}>"
        "<reaction>👍</reaction><reaction>❤️</reaction></reactions>"
    )
    [reaction] = await world.sent(1)
    mail = reaction.message
    assert str(mail["In-Reply-To"]) == "<m1@capulet.lit>"
    assert str(mail["References"]) == "<m1@capulet.lit>"
    assert str(mail["Subject"]) == "Re: Balcony"
    fallback, part = mail.iter_parts()
    assert fallback.get_content().replace("\r\n", "\n") == (
        "alice reacted 👍 ❤️ to your message:\n\n> Wherefore art thou?\n"
    )
    assert part.get_content_disposition() == "reaction"
    assert part.get_content().strip() == "👍 ❤️"

    # Alice writes; the gateway restarts; Juliet reacts to Alice's mail, then changes it
    said = world.send("", body="Here, at the window")
    [_, plain] = await world.sent(2)
    world.gateway.kill()
    await world.gateway.astart()
    await world.mail_in(reaction_mail("😍", "<r1@capulet.lit>", str(plain.message["Message-ID"])))
    got = await world.alice.expect(child(f"{{{NS_REACTIONS}}}reactions"), timeout=20)
    reactions = got.xml.find(f"{{{NS_REACTIONS}}}reactions")
    assert reactions is not None and reactions.get("id") == said
    assert [r.text for r in reactions] == ["😍"]
    assert str(got["from"]).startswith(JULIET_JID) and not got["body"]
    await world.mail_in(reaction_mail("", "<r2@capulet.lit>", str(plain.message["Message-ID"])))
    got = await world.alice.expect(child(f"{{{NS_REACTIONS}}}reactions"))
    taken_back = got.xml.find(f"{{{NS_REACTIONS}}}reactions")
    assert taken_back is not None and taken_back.get("id") == said
    assert list(taken_back) == []


async def test_a_reaction_to_an_unknown_message_is_not_carried_as_one(world: World) -> None:
    """Mail reacting to no mail the gateway knows is shown as the mail it is; a reaction of
    Alice's to a message the gateway does not know is refused, and nothing is sent."""
    await world.mail_in(reaction_mail("👍", "<r9@capulet.lit>", "<nobody@nowhere.example>"))
    got = await world.alice.expect_message(from_=JULIET_JID)
    assert got["body"] == "👍"
    assert got.xml.find(f"{{{NS_REACTIONS}}}reactions") is None

    reacted = world.send(
        f"<reactions xmlns='{NS_REACTIONS}' id='not-a-known-id'><reaction>👍</reaction></reactions>"
    )
    error = await world.alice.expect(
        lambda s: isinstance(s, Message) and s["type"] == "error" and s["id"] == reacted
    )
    assert error["error"]["condition"] == "item-not-found"
    assert "does not know the email you reacted to" in error["error"]["text"]
    assert world.sink.received == []


async def test_a_reply_threads_onto_the_replied_to_mail_both_ways(world: World) -> None:
    await world.mail_in(juliet_mail("Come at nine?", "<m1@capulet.lit>", "Supper"))
    first = await world.alice.expect_message(from_=JULIET_JID, body="Come at nine?")
    await world.mail_in(juliet_mail("Bring wine.", "<m2@capulet.lit>", "Wine"))
    await world.alice.expect_message(from_=JULIET_JID, body="Bring wine.")

    # Alice answers the first mail, not the last, as Conversations sends a reply
    fallback = "> Come at nine?\n"
    said = world.send(
        f"<reply xmlns='{NS_REPLY}' to={quoteattr(JULIET_JID)} id={quoteattr(first['id'])}/>"
        f"<fallback xmlns='urn:xmpp:fallback:0' for='{NS_REPLY}'>"
        f"<body start='0' end='{len(fallback)}'/></fallback>",
        body=fallback + "Yes, at nine.",
    )
    [sent] = await world.sent(1)
    mail = sent.message
    assert str(mail["In-Reply-To"]) == "<m1@capulet.lit>"
    assert str(mail["References"]) == "<m1@capulet.lit>"
    assert str(mail["Subject"]) == "Re: Supper"
    text = body_of(sent)
    assert text.startswith("Yes, at nine.\n\nOn ")
    assert text.endswith(", juliet@capulet.lit wrote:\n> Come at nine?")

    # Juliet's answer to Alice's mail is an XEP-0461 reply to Alice's message
    await world.mail_in(
        juliet_mail("Good.", "<m3@capulet.lit>", "Re: Supper", In_Reply_To=str(mail["Message-ID"]))
    )
    got = await world.alice.expect_message(from_=JULIET_JID, body="Good.")
    reply = got.xml.find(f"{{{NS_REPLY}}}reply")
    assert reply is not None
    assert (reply.get("id"), reply.get("to")) == (said, ALICE)


async def test_a_correction_is_a_new_mail_in_the_thread_and_bounces_as_itself(
    world: World,
) -> None:
    first = world.send("", body="See you at nine", receipt=True)
    await world.alice.expect(lambda s: isinstance(s, Message) and s["receipt"] == first)
    fixed = world.send(
        f"<replace xmlns='{NS_CORRECT}' id={quoteattr(first)}/>",
        body="See you at ten",
        receipt=True,
    )
    await world.alice.expect(lambda s: isinstance(s, Message) and s["receipt"] == fixed)
    [original, correction] = await world.sent(2)
    mail = correction.message
    first_id = str(original.message["Message-ID"])
    assert str(mail["Subject"]) == f"Correction: {original.message['Subject']}"
    assert str(mail["In-Reply-To"]) == first_id
    assert str(mail["Supersedes"]) == first_id
    assert str(mail["Message-ID"]) != first_id
    text = body_of(correction)
    assert text.startswith(f"{CORRECTION_LINE}\n\nSee you at ten\n\nOn ")
    assert text.endswith(f", {ALICE_ADDRESS} wrote:\n> See you at nine")

    # the relay bounces the correction: the error names the correction, not the original
    await world.mail_in(failure_report(correction.data))
    error = await world.alice.expect(
        lambda s: isinstance(s, Message) and s["type"] == "error", timeout=15
    )
    assert error["id"] == fixed
    assert "mailbox does not exist" in error["error"]["text"]

    # a reaction to the correction mail lands on the message Alice's client shows: the
    # original id, which the correction replaced the text of
    correction_id = str(mail["Message-ID"])
    await world.mail_in(reaction_mail("👍", "<r1@capulet.lit>", correction_id))
    got = await world.alice.expect(child(f"{{{NS_REACTIONS}}}reactions"))
    reactions = got.xml.find(f"{{{NS_REACTIONS}}}reactions")
    assert reactions is not None and reactions.get("id") == first

    # and Alice's reply to her corrected message answers the correction, quoting its text
    world.send(f"<reply xmlns='{NS_REPLY}' id={quoteattr(first)}/>", body="or later")
    [*_, reply] = await world.sent(3)
    assert str(reply.message["In-Reply-To"]) == correction_id
    assert body_of(reply).endswith("wrote:\n> See you at ten")


async def test_a_mail_that_supersedes_another_is_a_correction(world: World) -> None:
    await world.mail_in(juliet_mail("at nine", "<m1@capulet.lit>"))
    first = await world.alice.expect_message(from_=JULIET_JID, body="at nine")
    await world.mail_in(
        juliet_mail(
            f"{CORRECTION_LINE}\n\nat ten",
            "<m2@capulet.lit>",
            "Correction: Balcony",
            In_Reply_To="<m1@capulet.lit>",
            Supersedes="<m1@capulet.lit>",
        )
    )
    got = await world.alice.expect_message(from_=JULIET_JID, body="at ten")
    replace = got.xml.find(f"{{{NS_CORRECT}}}replace")
    assert replace is not None and replace.get("id") == first["id"]


async def test_a_retraction_cannot_recall_mail_and_says_so(world: World) -> None:
    said = world.send("", body="oops")
    await world.sent(1)
    world.send(f"<retract xmlns='urn:xmpp:message-retract:1' id={quoteattr(said)}/>")
    notice = await world.alice.expect_message(from_=MAIL, contains="cannot be recalled")
    assert notice["body"] == (
        f"Your email to {JULIET} cannot be recalled: once mail is sent there is no way to "
        "take it back, so it stays in their mailbox. Nothing was sent."
    )
    assert len(world.sink.received) == 1


async def test_a_shared_file_is_attached_and_other_links_stay_text(world: World) -> None:
    world.alice.xmpp.register_plugin("xep_0363")
    upload = world.alice.xmpp.plugin["xep_0363"]
    url = await upload.upload_file(
        "rose.png",
        size=len(ROSE),
        content_type="image/png",
        input_file=io.BytesIO(ROSE),
        domain=JID("example.org"),
    )
    assert url.startswith(f"http://127.0.0.1:{world.http_port}/file_share/")
    world.send(f"<x xmlns='jabber:x:oob'><url>{_escape(url)}</url></x>", body=url)
    [sent] = await world.sent(1)
    mail = sent.message
    assert body_of(sent) == "Attached: rose.png"
    [attachment] = list(mail.iter_attachments())
    assert attachment.get_filename() == "rose.png"
    assert attachment.get_content_type() == "image/png"
    assert attachment.get_content() == ROSE

    # a hostile link: an internal address that is no upload service is never requested
    asked: list[str] = []

    async def secret(request: web.Request) -> web.Response:
        asked.append(request.path)
        return web.Response(body=b"internal")

    app = web.Application()
    app.router.add_get("/{tail:.*}", secret)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        hostile = f"http://127.0.0.1:{port}/latest/meta-data"
        world.send(f"<x xmlns='jabber:x:oob'><url>{_escape(hostile)}</url></x>", body=hostile)
        [_, second] = await world.sent(2)
        assert body_of(second) == hostile
        assert list(second.message.iter_attachments()) == []
        assert asked == []
    finally:
        await runner.cleanup()
