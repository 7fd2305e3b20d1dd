"""SQL text, parsed once per distinct statement.

SQLAlchemy's ``text()`` scans each statement for its parameters; on the hot paths (the inbound
queue under a burst of webhook posts) that scan was a visible share of the gateway's time.
The statements are a small fixed set, so each is kept once it is built.
"""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy import TextClause, text


@lru_cache(maxsize=1024)
def sql(statement: str) -> TextClause:
    return text(statement)
