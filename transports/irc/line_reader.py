"""The way into an IRC connection: what the server sends, cut into lines, within bounds.

A pure function over the connection's two pieces of state (the unfinished line, and whether
an overlong line is being skipped), kept on the connection itself: an object of its own per
connection would cost memory for every connected user.
"""

from __future__ import annotations

#: A partial line longer than this is dropped, up to its end: no valid line is that long.
MAX_READ_LINE = 65536


def split_lines(partial: bytes, skipping: bool, data: bytes) -> tuple[list[bytes], bytes, bool]:
    """The whole lines in ``partial + data`` (without CR LF), the unfinished rest, and
    whether an overlong line is still being skipped (up to its end, keeping the connection)."""
    if skipping:
        end = data.find(b"\n")
        if end < 0:
            return [], b"", True
        data = data[end + 1 :]
    if partial:
        data = partial + data
    lines = data.split(b"\n")
    rest = lines.pop()
    if len(rest) > MAX_READ_LINE:
        return [line.rstrip(b"\r") for line in lines], b"", True
    return [line.rstrip(b"\r") for line in lines], rest, False
