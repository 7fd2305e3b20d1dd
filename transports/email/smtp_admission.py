"""The SMTP listener's bounds: which connections it serves, and when (transports/admission.py).

A connection costs its client a SYN and the gateway far more: aiosmtpd builds a session,
writes the greeting, reads until the client hangs up. A client connecting in a loop (8
connections at a time from one address, each hanging up after the greeting) made 4,000
connections a second and held the gateway's core, which carries every transport, for as long
as it went on (bench/smtp_flood.py). Postfix answers such clients with a connection rate
per client (anvil); so does this listener, but it slows a client down rather than refusing
it: past its rate, a client's new connection waits for its turn before it is greeted. SMTP
gives a server five minutes to greet (RFC 5321 4.5.3.2.1), and a sending server that waits
delivers its mail, where one told 421 queues it for later.

Past the bounds below, a client's connection is told 421 at once (one write, no session
built), or the listener takes no connection for a while (they wait in the kernel's backlog).
"""

from __future__ import annotations

from transports.admission import Limits

SMTP_LIMITS = Limits(
    # Sessions served at once. A session in DATA holds what it was sent, up to
    # max_message_bytes, for as long as its sender keeps it alive, so the number of sessions
    # is what bounds the listener's memory. Sending servers take a 421 as "try again later".
    sessions=16,
    # Sessions one client may hold at once, so that one sender keeping its sessions alive (a
    # byte every few minutes does) cannot shut every other sender out.
    sessions_per_client=4,
    # Connections a client may open at once, and then each second: far more than a sending
    # server needs, who sends many mails over one connection or a few.
    burst=60,
    per_second=10.0,
    # Connections waiting (for their turn or a place), of all clients and of one
    waiting=64,
    waiting_per_client=16,
    # How long a connection may wait for a session's place when all are taken
    place_wait_seconds=0.5,
    # Connections answered (greeted or told 421) in one second; past them the listener takes
    # none until the next second. A 421 costs the gateway about 60 µs (an accept, a write, a
    # close) and a session a few hundred, and a client answered at once can come back at
    # once: 100 connections at a time from one address drew 7,400 refusals a second, 41% of
    # a core, before this bound, and the rate of each client does not hold back one with many
    # addresses (an IPv6 /48 has 65,536 /64s).
    answers_per_second=200,
    refusal=b"421 4.3.2 Too many connections; try again later\r\n",
)
