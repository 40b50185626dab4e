"""`load_app`: from ``module:attribute`` to an `App`, or a clear `ConfigurationError`."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from taskgate import App
from taskgate.errors import ConfigurationError
from taskgate.loader import load_app, split_import_path


@pytest.fixture
def modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory on sys.path for throwaway modules (forgotten afterwards)."""
    monkeypatch.syspath_prepend(str(tmp_path))
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        del sys.modules[name]


def test_loads_the_example_app_and_sets_its_import_path() -> None:
    app = load_app("taskgate.example:app")
    assert isinstance(app, App)
    assert app.import_path == "taskgate.example:app"
    assert "vzdump" in app.operations


def test_a_bare_module_means_its_app_attribute(modules: Path) -> None:
    (modules / "tg_bare.py").write_text("import taskgate\napp = taskgate.App('bare')\n")
    app = load_app("tg_bare")
    assert app.name == "bare"
    assert app.import_path == "tg_bare:app"


def test_nested_attribute(modules: Path) -> None:
    (modules / "tg_nested.py").write_text(
        "import taskgate\nclass Holder:\n    app = taskgate.App('nested')\n"
    )
    assert load_app("tg_nested:Holder.app").name == "nested"


def test_the_current_directory_is_importable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "tg_cwd_app.py").write_text("import taskgate\napp = taskgate.App('cwd')\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    try:
        assert load_app("tg_cwd_app:app").name == "cwd"
    finally:
        sys.modules.pop("tg_cwd_app", None)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("", "expected 'module:attribute'"),
        (":app", "expected 'module:attribute'"),
        ("mod:", "expected 'module:attribute'"),
        ("my-module:app", "expected 'module:attribute'"),
        ("mod:not an attr", "is not an attribute name"),
    ],
)
def test_malformed_paths(path: str, expected: str) -> None:
    with pytest.raises(ConfigurationError, match=expected):
        split_import_path(path)


def test_missing_module() -> None:
    with pytest.raises(ConfigurationError, match="no module named 'tg_does_not_exist'"):
        load_app("tg_does_not_exist:app")


def test_missing_dependency_of_the_module(modules: Path) -> None:
    (modules / "tg_dep.py").write_text("import tg_missing_dependency\n")
    with pytest.raises(ConfigurationError, match=r"importing tg_dep failed.*tg_missing_dep"):
        load_app("tg_dep:app")


def test_module_that_raises(modules: Path) -> None:
    (modules / "tg_raises.py").write_text("raise RuntimeError('boom at import')\n")
    with pytest.raises(ConfigurationError, match="RuntimeError: boom at import"):
        load_app("tg_raises:app")


def test_module_with_a_syntax_error(modules: Path) -> None:
    (modules / "tg_syntax.py").write_text("def broken(:\n")
    with pytest.raises(ConfigurationError, match="SyntaxError"):
        load_app("tg_syntax:app")


def test_bad_operation_definition_is_reported(modules: Path) -> None:
    (modules / "tg_badop.py").write_text(
        "import taskgate\napp = taskgate.App()\n@app.operation('bad name!')\ndef op(ctx): pass\n"
    )
    with pytest.raises(ConfigurationError, match="operation name 'bad name!'"):
        load_app("tg_badop:app")


def test_missing_attribute() -> None:
    with pytest.raises(ConfigurationError, match="has no attribute 'nothing'"):
        load_app("taskgate.example:nothing")


def test_not_an_app() -> None:
    with pytest.raises(ConfigurationError, match=r"expected a taskgate\.App, found type"):
        load_app("taskgate:App")
