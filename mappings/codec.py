"""JSON for the store's TEXT columns: compact, with a stable key order so exports diff well."""

from __future__ import annotations

import json
from typing import Any

#: Made once: ``json.dumps`` with options builds an encoder on every call (a fifth of the
#: time of encoding an inbound event, which every post, line and mail is)
_ENCODER = json.JSONEncoder(separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def dumps(data: Any) -> str:
    return _ENCODER.encode(data)


def loads(text: str | None) -> Any:
    return json.loads(text) if text else {}
