"""The README's "From a terminal" section (its schedules and groups too), run command by
command against the example app (in process), as a reader would type it."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

import taskgate.example
from taskgate.app import App

from .conftest import Invoke
from .inprocess import BASE, InProcessServer

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture
def served_app() -> App:
    return taskgate.example.app


def section() -> str:
    text = README.read_text()
    start = text.index("\n## From a terminal\n")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, re.S)


def command(line: str) -> tuple[str | None, str | None, list[str]]:
    """A line of the README as (the variable its output is captured in, the text echoed
    into it, its words): ``V=$(echo 'text' | taskgate ...)``, ``V=$(taskgate ...)``,
    ``taskgate ...``."""
    words = shlex.split(line, comments=True)
    capture = None
    if words and (m := re.fullmatch(r"(\w+)=\$\((.*)", words[0])) and words[-1].endswith(")"):
        capture, words[0] = m.group(1), m.group(2)
        words[-1] = words[-1][:-1]
        words = [w for w in words if w]
    piped = None
    if "|" in words:
        bar = words.index("|")
        assert words[0] == "echo", line
        piped, words = " ".join(words[1:bar]) + "\n", words[bar + 1 :]
    return capture, piped, words


def test_the_readme_commands_work(tg: Invoke, inproc: InProcessServer, tmp_path: Path) -> None:
    script, config = "\n".join(blocks(section(), "sh")), blocks(section(), "toml")[0]
    env = {"TASKGATE_URL": BASE, "TASKGATE_API_KEY": inproc.keys["admin"]}
    variables: dict[str, str] = {}
    ran = 0
    for line in script.splitlines():
        capture, piped, words = command(line)
        if not words or words[0] == "export":
            continue
        expected = re.search(r"# exit status (\d)", line)
        assert words[0] == "taskgate", line
        args = [re.sub(r"\$(\w+)", lambda v: variables[v.group(1)], w) for w in words[1:]]
        result = tg(*args, env=env, input=piped)
        wanted = int(expected.group(1)) if expected else 0
        assert result.exit_code == wanted, (line, result.output)
        assert "Traceback" not in result.stderr
        if capture is not None:
            variables[capture] = result.stdout.strip()
        ran += 1
    assert ran >= 30

    # the config file, with the server's URL and a key in it
    path = tmp_path / "client.toml"
    path.write_text(
        config.replace("http://127.0.0.1:8006", BASE).replace("tgk_...", inproc.keys["read"])
    )
    result = tg(
        "tasks",
        "ls",
        "--client-config",
        str(path),
        "--json",
        env={"TASKGATE_URL": "", "TASKGATE_API_KEY": ""},
    )
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) >= 3
