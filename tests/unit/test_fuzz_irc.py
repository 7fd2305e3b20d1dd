"""IRC lines under fuzzing: what a server sends is read, what a user types is sent as one line.

Properties:
- a received line, in any bytes and encoding, parses, and its texts render as a stanza;
- a line we build, and every PRIVMSG line an XMPP body becomes, carries no CR, LF or NUL,
  neither as text nor as the bytes written (whatever encoding the user picked), and reads back
  as what was meant;
- the only error is :class:`UnsafeLine`.
"""

from __future__ import annotations

import asyncio
import contextlib
import encodings.aliases

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from support.strategies import any_char, assert_renderable, hostile_texts

from transports.irc.connection import ConnectOptions, IrcConnection
from transports.irc.protocol import (
    MAX_LINE_BYTES,
    UnsafeLine,
    build_line,
    check_encoding,
    decode,
    encode_line,
    parse_line,
    parse_raw_command,
)
from transports.irc.text import (
    CTCP_DELIMITER,
    UNKNOWN_PREFIX_BYTES,
    body_from_xmpp,
    body_to_xmpp,
    one_line,
    split_message,
)

FAST = settings(max_examples=150, deadline=None)
LINE_BREAKS = ("\r", "\n", "\0")
#: Every codec name Python knows, text codecs or not: a user may type any of them.
ALL_ENCODINGS = sorted({*encodings.aliases.aliases.values(), "utf-8", "utf-16-le", "utf_7"})
SAFE_ENCODINGS = ["utf-8", "latin-1", "cp1252", "shift_jis", "gbk", "big5", "iso2022_jp", "koi8_r"]
TARGETS = st.sampled_from(["#chan", "#é€ü", "bob", "#" + "x" * 49, "n" * 64, "&l", "#a%b"])
#: An UTF-16-LE body that is CR LF QUIT on the wire.
UTF16_QUIT = "\u0a0d\u5551\u5449"


def unbroken(text: str) -> bool:
    return not any(char in text for char in LINE_BREAKS)


# -- what servers send -----------------------------------------------------------------------


@FAST
@given(raw=st.binary(max_size=600), encoding=st.sampled_from([*SAFE_ENCODINGS, "utf-16"]))
@example(raw=b":n!u@h PRIVMSG #c :\x01ACTION \x03,9\xff\x00\x1b]]>\x01", encoding="utf-8")
def test_a_received_line_parses_and_its_texts_render(raw: bytes, encoding: str) -> None:
    line = parse_line(decode(raw, encoding))
    assert line.command == line.command.upper()
    for param in line.params:
        assert_renderable(body_to_xmpp(param), nick=line.nick or None)


@FAST
@given(text=hostile_texts(200))
@example(text="@a=b;c= :n!u@h PRIVMSG #c\t#d  :x")
def test_any_line_parses_into_parameters_without_spaces(text: str) -> None:
    line = parse_line(text)
    assert all(param and " " not in param for param in line.params[:-1])


def test_only_spaces_separate_parameters() -> None:
    """RFC 1459: a tab (or any other white space) inside a parameter is part of it."""
    assert parse_line(":n!u@h PRIVMSG #c\t#d\x0b :x").params == ("#c\t#d\x0b", "x")


# -- what we send ----------------------------------------------------------------------------


@FAST
@given(
    command=st.one_of(st.sampled_from(["PRIVMSG", "KICK", "TOPIC", "MODE"]), hostile_texts(8)),
    params=st.lists(hostile_texts(20), max_size=4),
)
@example(command="PRIVMSG", params=["a\tb", "x"])
def test_a_built_line_is_one_line_that_reads_back(command: str, params: list[str]) -> None:
    try:
        line = build_line(command, *params)
    except UnsafeLine:
        return
    assert unbroken(line)
    read = parse_line(line)
    assert (read.command, read.params) == (command.upper(), tuple(params))


@FAST
@given(text=hostile_texts(80))
@example(text="PRIVMSG bob\x0bcarol :hi")
@example(text="PRIVMSG bob :hi\r\nQUIT")
def test_a_raw_command_is_one_line_that_means_what_was_typed(text: str) -> None:
    try:
        line = parse_raw_command(text)
    except UnsafeLine:
        return
    assert unbroken(line)
    typed = parse_line(text.strip().removeprefix("/"))
    sent = parse_line(line)
    assert (sent.command, sent.params) == (typed.command, typed.params)


def _unwrapped(text: str, action: bool) -> str:
    if not action:
        return text
    assert text.startswith(CTCP_DELIMITER + "ACTION ") and text.endswith(CTCP_DELIMITER)
    return text[len(CTCP_DELIMITER + "ACTION ") : -len(CTCP_DELIMITER)]


@FAST
@given(
    body=hostile_texts(900),
    target=TARGETS,
    prefix=st.one_of(st.none(), st.text(alphabet=any_char, max_size=400)),
    encoding=st.sampled_from(SAFE_ENCODINGS),
    command=st.sampled_from(["PRIVMSG", "NOTICE"]),
)
@example(body="hi", target="#é€ü", prefix=None, encoding="latin-1", command="PRIVMSG")
@example(body="hi", target="#chan", prefix="n!u@" + "h" * 500, encoding="utf-8", command="NOTICE")
@example(body="hi", target="#chan", prefix="n!u@ĥøšt", encoding="latin-1", command="PRIVMSG")
def test_an_xmpp_body_becomes_whole_lines_that_fit(
    body: str, target: str, prefix: str | None, encoding: str, command: str
) -> None:
    text = body_from_xmpp(body)
    lines = split_message(
        command, target, text.body, prefix=prefix, action=text.action, encoding=encoding
    )
    for line in lines:
        wire = encode_line(build_line(command, target, line), encoding)
        assert unbroken(wire[:-2].decode("latin-1"))
        seen_prefix = len((prefix or "").encode(encoding, "replace")) or UNKNOWN_PREFIX_BYTES
        if seen_prefix <= UNKNOWN_PREFIX_BYTES:
            assert 1 + seen_prefix + 1 + len(wire) <= MAX_LINE_BYTES
    # Nothing is lost but white space (line breaks, the spaces lines were split at) and NUL.
    sent = "".join("".join(_unwrapped(line, text.action).split()) for line in lines)
    assert sent == "".join(text.body.replace("\0", "").split())


@FAST
@given(text=hostile_texts(100))
@example(text="topic\r\nQUIT :bye")
@example(text="away\u2028\x85\x0bback")
def test_one_line_gives_a_parameter_that_is_one_line(text: str) -> None:
    flat = one_line(text)
    assert unbroken(flat) and flat == flat.strip() and len(flat.splitlines()) <= 1
    assert unbroken(build_line("KICK", "#chan", "bob", flat))


@FAST
@given(encoding=st.sampled_from(ALL_ENCODINGS), text=hostile_texts(40))
@example(encoding="utf_16_le", text=UTF16_QUIT)
def test_an_accepted_encoding_never_writes_a_line_break(encoding: str, text: str) -> None:
    try:
        check_encoding(encoding)
    except UnsafeLine:
        return
    line = build_line(
        "PRIVMSG", "#chan", text.replace("\r", "").replace("\n", "").replace("\0", "")
    )
    wire = encode_line(line, encoding)
    assert not any(byte in wire[:-2] for byte in b"\r\n\0")


def test_encodings_that_turn_text_into_line_breaks_are_refused() -> None:
    for name in ("utf-16-le", "utf-16", "utf-32", "utf-7", "cp037", "utf-8-sig", "rot13", "?"):
        try:
            check_encoding(name)
        except UnsafeLine:
            continue
        raise AssertionError(f"{name} accepted")
    assert check_encoding("Latin-1") == "iso8859-1"
    try:
        encode_line(build_line("PRIVMSG", "#c", UTF16_QUIT), "utf-16-le")
    except UnsafeLine:
        return
    raise AssertionError("a line with CR LF QUIT in its bytes was encoded")


# -- the bytes the connection writes -----------------------------------------------------------


class _Wire(asyncio.Transport):
    """Collects what the connection writes."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written.append(bytes(data))

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass


async def _written(encoding: str, body: str) -> tuple[bytes, int]:
    """What reached the wire, and how many lines were sent (not refused whole)."""
    options = ConnectOptions("irc.example.org", 6667, "me", encoding=encoding, burst=None)
    connection = IrcConnection(options, lambda _line: None, lambda _conn, _why: None)
    wire = _Wire()
    connection.connection_made(wire)
    sent = 0
    try:
        for line in split_message("PRIVMSG", "#chan", body, encoding=encoding):
            with contextlib.suppress(UnsafeLine):  # refused whole: nothing written
                connection.send("PRIVMSG", "#chan", line)
                sent += 1
    finally:
        connection.close()
    return b"".join(wire.written), sent


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    encoding=st.sampled_from(["utf-8", "latin-1", "utf-16-le", "utf-16", "utf-32", "cp037"]),
    body=hostile_texts(60),
)
@example(encoding="utf-16-le", body=UTF16_QUIT)
def test_the_connection_writes_no_line_break_inside_a_line(encoding: str, body: str) -> None:
    """The last line of defence: an encoding that got past the settings (UTF-16-LE writes
    U+0A0D as CR LF) still cannot put a line break on the wire.

    Lines written in one turn leave in one write: the wire holds exactly as many CRLF as
    lines were sent, each at a line's end, so none can hide inside a line."""
    data, sent = asyncio.run(_written(encoding, body))
    assert data.endswith(b"\r\n") or (not data and sent == 0)
    lines = data.split(b"\r\n")[:-1]
    assert len(lines) == sent, data
    for line in lines:
        assert not any(byte in line for byte in b"\r\n\0"), data
