"""Drive console XMPP clients (profanity, poezio) in a private tmux server, as a person would.

Issue 11's crashes were found with real clients, not with slixmpp: a client reacts to what
the gateway leaves out (an occupant with no `jid`, a self-presence without 210) in ways a
test library does not. So the tests type into real clients and read their screens.

Each driver runs its own tmux server on a socket in the test's directory, so it never
touches anyone else's tmux, and tears down only the session it created. The pane stays
after the program exits (`remain-on-exit`), so a crash is seen as a dead pane with its
exit status, not as a vanished session.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

TMUX = shutil.which("tmux") or "/usr/bin/tmux"
PROFANITY = shutil.which("profanity") or "/usr/bin/profanity"
POEZIO = shutil.which("poezio") or "/usr/bin/poezio"
SETPRIV = shutil.which("setpriv") or "/usr/bin/setpriv"
#: poezio exits at once under uid 0 ("Please do not run poezio as root."), and CI runs
#: the tests as root; there it runs as nobody:nogroup (65534), dropped with setpriv.
UNPRIVILEGED_ID = 65534


class ClientCrashed(AssertionError):
    """The client's process is gone: the pane is dead (the screen is in the message)."""


class TmuxClient:
    """One program in one tmux session; type into it and read its screen."""

    def __init__(
        self,
        workdir: Path,
        name: str,
        command: Sequence[str],
        env: Mapping[str, str],
        *,
        width: int = 220,
        height: int = 50,
    ) -> None:
        self.workdir = workdir
        self.name = name
        self.command = list(command)
        self.env = dict(env)
        self.width = width
        self.height = height
        self.socket = workdir / "tmux.sock"
        self.started = False

    def _tmux(self, *args: str, check: bool = True) -> str:
        result = subprocess.run(
            [TMUX, "-S", str(self.socket), *args],
            capture_output=True,
            text=True,
            timeout=20,
            env={**os.environ, **self.env},
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"tmux {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    def start(self) -> None:
        """Start the program in a new detached session that keeps its pane when it exits."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        env_prefix = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.env.items())
        program = f"env {env_prefix} {shlex.join(self.command)}"
        self._tmux(
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            self.name,
            "-x",
            str(self.width),
            "-y",
            str(self.height),
            program,
            ";",
            "set-option",
            "-t",
            self.name,
            "remain-on-exit",
            "on",
        )
        self.started = True

    def stop(self) -> None:
        """Kill the session this driver created (its tmux server then exits on its own)."""
        if self.started:
            self._tmux("kill-session", "-t", self.name, check=False)
            self.started = False

    # -- reading --------------------------------------------------------------------------------

    def screen(self, history: int = 2000) -> str:
        """The pane's text, with `history` lines of scrollback."""
        return self._tmux("capture-pane", "-p", "-J", "-t", self.name, "-S", f"-{history}")

    def pane_state(self) -> tuple[bool, str, str]:
        """(dead, exit status, pid) of the pane's program."""
        out = self._tmux(
            "display-message", "-p", "-t", self.name, "#{pane_dead} #{pane_dead_status} #{pane_pid}"
        ).split()
        dead = bool(out) and out[0] == "1"
        status = out[1] if len(out) > 2 else ""
        return dead, status, out[-1] if out else ""

    def assert_alive(self) -> None:
        dead, status, _ = self.pane_state()
        if dead:
            raise ClientCrashed(
                f"{self.command[0]} exited (status {status or '?'}); screen:\n{self.screen()}"
            )

    async def wait_for(self, pattern: str | re.Pattern[str], timeout: float = 30.0) -> str:
        """Wait until the screen matches `pattern` (searched); returns the matching text.

        Fails at once if the program died meanwhile, showing the last screen.
        """
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        while True:
            self.assert_alive()
            text = self.screen()
            found = regex.search(text)
            if found:
                return found.group(0)
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"screen did not show {regex.pattern!r} within {timeout}s:\n{text}"
                )
            await asyncio.sleep(0.3)

    # -- typing ---------------------------------------------------------------------------------

    def type_line(self, text: str) -> None:
        """Type a line literally and press Enter."""
        self.assert_alive()
        self._tmux("send-keys", "-t", self.name, "-l", text)
        self._tmux("send-keys", "-t", self.name, "Enter")

    async def submit_line(self, text: str, timeout: float = 10.0) -> None:
        """Type a line, wait until the bottom (input) line shows it, then press Enter.

        poezio takes keys that arrive in one read as a paste, in which Enter is a newline
        in the input, not "send"; waiting for the text on screen puts Enter in a read of
        its own. (type_line is enough for profanity, which reads key by key.)
        """
        self.assert_alive()
        self._tmux("send-keys", "-t", self.name, "-l", text)
        deadline = time.monotonic() + timeout
        while not self.input_line().endswith(text):
            self.assert_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"the input line did not show {text!r} within {timeout}s:\n{self.screen()}"
                )
            await asyncio.sleep(0.1)
        self._tmux("send-keys", "-t", self.name, "Enter")

    def input_line(self) -> str:
        """The last non-blank line of the visible pane, where console clients take input."""
        lines = self.screen(history=0).rstrip().splitlines()
        return lines[-1].rstrip() if lines else ""

    def press(self, key: str) -> None:
        """Press one key on its own (poezio's roster tab reads a lone `/` as "open input")."""
        self.assert_alive()
        self._tmux("send-keys", "-t", self.name, "-l", key)


def profanity_home(root: Path, jid: str, password: str, host: str, port: int) -> dict[str, str]:
    """A fresh profanity home: an account with TLS off for loopback Prosody; returns its env.

    Prosody in tests/support/prosody.py serves plain TCP on loopback, so the account says
    `tls.policy=disable`, as the slixmpp test clients connect without TLS.
    """
    config = root / "config"
    data = root / "data"
    (config / "profanity").mkdir(parents=True, exist_ok=True)
    (data / "profanity").mkdir(parents=True, exist_ok=True)
    (config / "profanity" / "profrc").write_text(
        "[ui]\nsplash=false\ntitlebar.show=true\n"
        "[notifications]\nmessage=false\nroom=false\ninvite=false\nsub=false\n"
        "[connection]\nautoping=0\n"
        "[logging]\nchlog=false\ngrlog=false\n"
        "[chatstates]\nenabled=false\n"
    )
    (data / "profanity" / "accounts").write_text(
        f"[{jid}]\n"
        "enabled=true\n"
        f"jid={jid}\n"
        f"server={host}\n"
        f"port={port}\n"
        "resource=tmux\n"
        f"password={password}\n"
        "tls.policy=disable\n"
        "auth.policy=default\n"
    )
    return {
        "HOME": str(root),
        "XDG_CONFIG_HOME": str(config),
        "XDG_DATA_HOME": str(data),
        "TERM": "xterm-256color",
        "LANG": "C.UTF-8",
    }


@contextlib.contextmanager
def poezio_client(
    workdir: Path, name: str, jid: str, password: str, host: str, port: int
) -> Iterator[TmuxClient]:
    """poezio logged in as `jid` through `host:port`, in a fresh home; stopped and removed after.

    The home is a new directory under the system temporary directory, not under `workdir`:
    as root, poezio runs as nobody, who cannot enter pytest's root-only `tmp_path`. tmux
    itself (and its socket) stays in `workdir`.
    """
    home = Path(tempfile.mkdtemp(prefix="portway-poezio-"))
    try:
        env = poezio_home(home, jid, password, host, port)
        command = [POEZIO, "-f", str(home / "config" / "poezio" / "poezio.cfg")]
        if os.geteuid() == 0:
            for path in (home, *home.rglob("*")):
                os.chown(path, UNPRIVILEGED_ID, UNPRIVILEGED_ID)
            command = [
                SETPRIV,
                f"--reuid={UNPRIVILEGED_ID}",
                f"--regid={UNPRIVILEGED_ID}",
                "--clear-groups",
                *command,
            ]
        client = TmuxClient(workdir, name, command, env)
        client.start()
        try:
            yield client
        finally:
            client.stop()
    finally:
        shutil.rmtree(home, ignore_errors=True)


def poezio_home(root: Path, jid: str, password: str, host: str, port: int) -> dict[str, str]:
    """A fresh poezio home whose poezio.cfg logs in without a question; returns its env.

    Prosody in tests/support/prosody.py serves plain TCP on loopback, hence
    `force_encryption = false` and `custom_host`/`custom_port`. Everything that would talk
    to the server about more than the test (bookmarks, MAM, PEP, carbons, receipts) or
    write outside the home (logs) is off, so the screen shows only what the test does.
    """
    config = root / "config"
    data = root / "data"
    cache = root / "cache"
    for path in (config / "poezio", data / "poezio", cache / "poezio"):
        path.mkdir(parents=True, exist_ok=True)
    settings = {
        "jid": jid,
        "password": password,
        "custom_host": host,
        "custom_port": str(port),
        "force_encryption": "false",
        "use_log": "false",
        "log_errors": "false",
        "plugins_autoload": "",
        "use_remote_bookmarks": "false",
        "use_bookmarks_method": "local",
        "synchronise_open_rooms": "false",
        "open_all_bookmarks": "false",
        "autorejoin": "false",
        "mam_sync": "false",
        "muc_history_length": "0",
        "enable_carbons": "false",
        "enable_avatars": "false",
        "enable_user_activity": "false",
        "enable_user_gaming": "false",
        "enable_user_mood": "false",
        "enable_user_nick": "false",
        "enable_user_tune": "false",
        "enable_smacks": "false",
        "send_chat_states": "false",
        "request_message_receipts": "false",
        "ack_message_receipts": "false",
        "enable_vertical_tab_list": "false",
        "beep_on": "",
        "lang": "en",
    }
    (config / "poezio" / "poezio.cfg").write_text(
        "[Poezio]\n" + "".join(f"{key} = {value}\n" for key, value in settings.items())
    )
    return {
        "HOME": str(root),
        "XDG_CONFIG_HOME": str(config),
        "XDG_DATA_HOME": str(data),
        "XDG_CACHE_HOME": str(cache),
        "TERM": "xterm-256color",
        "LANG": "C.UTF-8",
    }
