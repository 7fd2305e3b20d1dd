"""What a post may say about an earlier post, and the typed JSON users' messages become."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from transports.base import OutboundMessage
from transports.events import Refers
from transports.webhook.outbound import request_body
from transports.webhook.payloads import PayloadError, parse_post

SCHEMA = json.loads(
    (Path(__file__).parents[2] / "transports" / "webhook" / "post.schema.json").read_text()
)


def test_replace_is_read_from_json_and_from_forms() -> None:
    assert parse_post("application/json", b'{"text": "x", "replace": "p-1"}').replace == "p-1"
    assert parse_post("application/x-www-form-urlencoded", b"text=x&replace=p-2").replace == "p-2"
    assert parse_post("application/json", b'{"text": "x"}').replace is None
    assert parse_post("application/json", b'{"text": "x", "replace": ""}').replace is None


@pytest.mark.parametrize("bad", ['["p"]', "7", '"' + "x" * 201 + '"', '"a\\u0000b"'])
def test_a_replace_that_is_no_id_is_refused_in_words(bad: str) -> None:
    with pytest.raises(PayloadError, match="replace must be the id of an earlier post"):
        parse_post("application/json", f'{{"text": "x", "replace": {bad}}}'.encode())


def test_alert_notifications_name_their_group_and_say_when_it_resolved() -> None:
    def alerts(status: str) -> bytes:
        alert = {"status": status, "labels": {"alertname": "HighCPU"}, "annotations": {}}
        return json.dumps({"groupKey": "{}:{a}", "status": status, "alerts": [alert]}).encode()

    firing = parse_post("application/json", alerts("firing"))
    assert (firing.alert_group, firing.alert_resolved) == ("{}:{a}", False)
    resolved = parse_post("application/json", alerts("resolved"))
    assert (resolved.alert_group, resolved.alert_resolved) == ("{}:{a}", True)
    assert parse_post("application/json", b'{"text": "x"}').alert_group is None


def body(refers: Refers | None, text: str = "hi", refers_to: str | None = "p-0") -> Any:
    message = OutboundMessage("a@example.org", "a@example.org/x", "bot", text, refers=refers)
    return json.loads(request_body(message, "bot@hooks.example.org", "p-9", 0.0, refers_to))


@pytest.mark.parametrize(
    ("refers", "extra"),
    [
        (None, {}),
        (Refers("correction", "m"), {"refers_to": "p-0"}),
        (Refers("retraction", "m"), {"refers_to": "p-0"}),
        (Refers("reaction", "m", reactions=("👍",)), {"refers_to": "p-0", "reactions": ["👍"]}),
        (Refers("reaction", "m"), {"refers_to": "p-0", "reactions": []}),
        (Refers("reply", "m", quote="q"), {"refers_to": "p-0", "quote": "q"}),
    ],
)
def test_every_kind_is_typed_and_valid(refers: Refers | None, extra: dict[str, Any]) -> None:
    payload = body(refers)
    jsonschema.validate(payload, SCHEMA)
    assert payload["type"] == (refers.kind if refers else "message")
    assert {k: payload[k] for k in extra} == extra
    assert not {"refers_to", "reactions", "quote"} - set(extra) & set(payload)


def test_the_schema_refuses_what_it_must() -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**body(None), "refers_to": "p"}, SCHEMA)
    wrong = body(Refers("correction", "m"))
    del wrong["refers_to"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(wrong, SCHEMA)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**body(None), "type": "poke"}, SCHEMA)
