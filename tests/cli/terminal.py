"""Running the ``taskgate`` command as a person would: as a subprocess, and in a
pseudo-terminal (Python's `pty`), where rich draws its live progress bar.

`Terminal` reads what the program writes to the terminal; `screen` turns that into the
lines a person would see at the end (rich redraws its bar in place with ``\\r`` and
erase-line sequences), and `frames` into every state the bar was drawn in.
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
COLUMNS, ROWS = 120, 40
_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\x1b[()][A-Z0-9]")
BAR = "━"


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "taskgate", *args]


def client_env(url: str, key: str | None, home: Path) -> dict[str, str]:
    """The environment of a person who set TASKGATE_URL and TASKGATE_API_KEY."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKGATE_")}
    env.pop("COLUMNS", None)
    env.update(TASKGATE_URL=url, XDG_CONFIG_HOME=str(home), TERM="xterm-256color")
    if key is not None:
        env["TASKGATE_API_KEY"] = key
    return env


def run(
    args: list[str], env: Mapping[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """The command with stdout and stderr piped (not a terminal)."""
    return subprocess.run(
        command(*args),
        cwd=REPO,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_many(
    commands: list[list[str]], env: Mapping[str, str], timeout: float = 60
) -> list[subprocess.CompletedProcess[str]]:
    """Several commands at once (each starts in about half a second: run them side by
    side); their results, in order."""
    procs = [
        subprocess.Popen(
            command(*args),
            cwd=REPO,
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args in commands
    ]
    results = []
    for args, proc in zip(commands, procs, strict=True):
        out, err = proc.communicate(timeout=timeout)
        results.append(subprocess.CompletedProcess(command(*args), proc.returncode, out, err))
    return results


_ACQUIRE_TERMINAL = (
    "import fcntl, os, sys, termios\n"
    "fcntl.ioctl(0, termios.TIOCSCTTY, 0)\n"
    "os.execv(sys.executable, [sys.executable, '-m', 'taskgate', *sys.argv[1:]])\n"
)
"""Run first in the child's new session: make the pty (stdin) its controlling terminal,
so that Ctrl+C typed at it interrupts the command as at a real terminal; then become
``taskgate``. (A preexec_fn would do the same, but is unsafe in a threaded parent.)"""


class Terminal:
    """The command with a pseudo-terminal as its stdin, stdout and stderr."""

    def __init__(self, args: list[str], env: Mapping[str, str]) -> None:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _ACQUIRE_TERMINAL, *args],
            cwd=REPO,
            env=dict(env),
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
        )
        os.close(slave)
        self._master = master
        self._raw = bytearray()
        self._closed = False

    @property
    def raw(self) -> str:
        return self._raw.decode("utf-8", "replace")

    def _read(self, timeout: float) -> bool:
        """Read what is there within ``timeout``; False once the program closed it."""
        if self._closed:
            return False
        ready, _, _ = select.select([self._master], [], [], timeout)
        if not ready:
            return True
        try:
            data = os.read(self._master, 65536)
        except OSError:  # EIO: every writer of the pty has gone
            data = b""
        if not data:
            self._closed = True
            os.close(self._master)
            return False
        self._raw += data
        return True

    def read_until(self, pattern: str, timeout: float = 60) -> str:
        """What the screen showed up to when ``pattern`` (a regex) first appeared in a
        frame of it."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while not any(regex.search(f) for f in frames(self.raw)):
            if not self._read(0.1) or time.monotonic() > deadline:
                raise AssertionError(
                    f"{pattern!r} never appeared; the terminal showed:\n{self.raw!r}"
                )
        return self.raw

    def type(self, keys: bytes) -> None:
        """Keys typed at the terminal (``b"\\x03"``: Ctrl+C)."""
        os.write(self._master, keys)

    def finish(self, timeout: float = 60) -> tuple[int, str]:
        """Read until the program ends; its exit status and all it wrote."""
        deadline = time.monotonic() + timeout
        while self._read(0.1):
            if time.monotonic() > deadline:
                self.proc.kill()
                raise AssertionError(f"the command did not end; it showed:\n{self.raw!r}")
        return self.proc.wait(timeout), self.raw


def visible(raw: str) -> str:
    """The text without escape sequences (colours, cursor moves)."""
    return _ESCAPE.sub("", raw)


def frames(raw: str) -> list[str]:
    """Every line as drawn, including each redraw of the live bar."""
    text = visible(raw).replace("\r\n", "\n")
    return [part for line in text.split("\n") for part in line.split("\r") if part.strip()]


def screen(raw: str) -> list[str]:
    """The lines left on the screen: of each line, what its last redraw wrote."""
    text = visible(raw).replace("\r\n", "\n")
    lines = []
    for line in text.split("\n"):
        drawn = [part for part in line.split("\r") if part.strip()]
        if drawn:
            lines.append(drawn[-1].rstrip())
    return lines
