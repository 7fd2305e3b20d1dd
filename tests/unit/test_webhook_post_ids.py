"""The ids the gateway gives posts that came without ``webhook-id``, and the 202 that says them.

The ids grow with time so that the indexes they are keys of are written at their end (see
:func:`transports.webhook.inbound.new_post_id`); they must still never repeat, and the 202
must read as it did when :func:`aiohttp.web.json_response` wrote it.
"""

from __future__ import annotations

import json
import re
import time

import pytest
from aiohttp import web

from transports.webhook.inbound import _accepted, new_post_id


def test_post_ids_are_32_hex_digits_and_never_repeat() -> None:
    ids = [new_post_id() for _ in range(10_000)]
    assert all(re.fullmatch("[0-9a-f]{32}", post_id) for post_id in ids)
    assert len(set(ids)) == len(ids)


def test_a_later_post_id_sorts_after_an_earlier_one() -> None:
    earlier = new_post_id()
    time.sleep(0.002)
    assert new_post_id() > earlier


@pytest.mark.parametrize("post_id", [new_post_id(), 'msg_"quoted"\\', "msg_é✓"])
def test_the_202_reads_as_json_response_wrote_it(post_id: str) -> None:
    answer = _accepted(post_id)
    before = web.json_response({"id": post_id}, status=202)
    assert answer.status == 202
    assert answer.headers["Content-Type"] == before.headers["Content-Type"]
    assert answer.body == before.body
    assert isinstance(answer.body, bytes)
    assert json.loads(answer.body) == {"id": post_id}
