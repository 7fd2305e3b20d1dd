"""JSON for the store's TEXT columns: compact, with a stable key order so exports diff well."""

from __future__ import annotations

import json
from typing import Any


def dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def loads(text: str | None) -> Any:
    return json.loads(text) if text else {}
