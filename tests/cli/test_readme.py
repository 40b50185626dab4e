"""The README's "From a terminal" section (its schedules too), run command by command
against the example app (in process), as a reader would type it."""

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


def test_the_readme_commands_work(tg: Invoke, inproc: InProcessServer, tmp_path: Path) -> None:
    script, config = "\n".join(blocks(section(), "sh")), blocks(section(), "toml")[0]
    env = {"TASKGATE_URL": BASE, "TASKGATE_API_KEY": inproc.keys["admin"]}
    variables: dict[str, str] = {}
    ran = 0
    for line in script.splitlines():
        words = shlex.split(line, comments=True)
        if not words or words[0] == "export":
            continue
        expected = re.search(r"# exit status (\d)", line)
        capture = None
        if (m := re.fullmatch(r"(\w+)=\$\((.*)\)", " ".join(words))) is not None:
            capture, words = m.group(1), shlex.split(m.group(2))
        assert words[0] == "taskgate", line
        args = [re.sub(r"\$(\w+)", lambda v: variables[v.group(1)], w) for w in words[1:]]
        result = tg(*args, env=env)
        wanted = int(expected.group(1)) if expected else 0
        assert result.exit_code == wanted, (line, result.output)
        assert "Traceback" not in result.stderr
        if capture is not None:
            variables[capture] = result.stdout.strip()
        ran += 1
    assert ran >= 20

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
