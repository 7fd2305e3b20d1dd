"""What a user's message becomes as an SMS/MMS, and Twilio's errors in words."""

from __future__ import annotations

import pytest

from transports.base import GatewayError, OutboundMessage
from transports.egress import RefusedDestination
from transports.sms.client import TwilioClient
from transports.sms.outbound import compose
from transports.sms.twilio_errors import describe_error


def message(body: str, oob: tuple[str, ...] = ()) -> OutboundMessage:
    return OutboundMessage(
        user_jid="alice@example.org",
        from_jid="alice@example.org/phone",
        contact="+15557654321",
        body=body,
        oob_urls=oob,
    )


def test_plain_text_is_the_body() -> None:
    sms = compose(message("hello there"))
    assert (sms.body, sms.media_urls) == ("hello there", ())


def test_an_oob_upload_becomes_media_and_leaves_the_body() -> None:
    url = "https://upload.example.org/abc/cat.jpg"
    sms = compose(message(url, (url,)))
    assert (sms.body, sms.media_urls) == ("", (url,))


def test_body_urls_on_the_users_server_are_uploads() -> None:
    url = "https://upload.example.org/x/dog.png"
    sms = compose(message(f"look: {url}"))
    assert (sms.body, sms.media_urls) == ("look:", (url,))


def test_other_links_stay_text() -> None:
    sms = compose(message("see https://news.example.com/story and https://notexample.org/x"))
    assert sms.media_urls == ()
    assert "https://news.example.com/story" in sms.body


def test_at_most_ten_attachments() -> None:
    urls = tuple(f"https://upload.example.org/{n}.jpg" for n in range(11))
    with pytest.raises(GatewayError, match="at most 10") as caught:
        compose(message("", urls))
    assert caught.value.condition == "not-acceptable"
    assert len(compose(message("", urls[:10])).media_urls) == 10


def test_too_long_or_empty_is_refused() -> None:
    with pytest.raises(GatewayError, match="1600"):
        compose(message("x" * 1601))
    assert compose(message("x" * 1600)).body == "x" * 1600
    with pytest.raises(GatewayError, match="empty"):
        compose(message("   "))


def test_non_http_oob_urls_are_ignored() -> None:
    with pytest.raises(GatewayError, match="empty"):
        compose(message("", ("file:///etc/passwd",)))


def test_twilio_errors_in_words() -> None:
    assert describe_error(30003) == "the phone is switched off or out of reach (Twilio error 30003)"
    assert describe_error("30007").startswith("the carrier filtered the message as spam")
    assert describe_error(21211, "The 'To' number 123 is not valid.") == (
        "The 'To' number 123 is not valid. (Twilio error 21211)"
    )
    assert describe_error(39999) == "Twilio error 39999"
    assert describe_error(None) == "Twilio did not say why"


async def test_the_accounts_credentials_go_to_api_base_url_only() -> None:
    """Twilio's hosts are sent to api_base_url; a URL from an answer going elsewhere is not."""
    client = TwilioClient("AC" + "0" * 32, "auth-token-value", "http://127.0.0.1:1/base")
    await client.open()
    try:
        assert client.is_api_url("https://api.twilio.com/2010-04-01/Accounts/AC0/Messages.json")
        assert client.is_api_url("http://127.0.0.1:1/base/2010-04-01/x")
        assert not client.is_api_url("https://s3.example.com/media/ME1")
        http = client._http
        assert http is not None
        with pytest.raises(RefusedDestination):
            await http.request("GET", "http://169.254.169.254/latest/meta-data/", auth=("a", "b"))
    finally:
        await client.close()
