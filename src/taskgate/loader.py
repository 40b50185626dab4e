"""Loading an `App` from its import path, ``"package.module:attribute"``.

The CLI loads the app named on its command line; a worker re-imports the same path in a
child process for process-isolated operations. Every failure is a `ConfigurationError`
whose message says what to fix, never a bare traceback.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from taskgate.app import App
from taskgate.errors import ConfigurationError

DEFAULT_ATTRIBUTE = "app"


def split_import_path(path: str) -> tuple[str, str]:
    """``"pkg.mod:attr"`` -> ``("pkg.mod", "attr")``; a bare module means ``:app``."""
    module, sep, attr = path.strip().partition(":")
    if not sep:
        attr = DEFAULT_ATTRIBUTE
    if not module or not attr or not all(p.isidentifier() for p in module.split(".")):
        raise ConfigurationError(
            f"app {path!r}: expected 'module:attribute', e.g. 'myproject.tasks:app'"
        )
    if not all(p.isidentifier() for p in attr.split(".")):
        raise ConfigurationError(f"app {path!r}: {attr!r} is not an attribute name")
    return module, attr


def load_app(path: str) -> App:
    """Import ``path`` and return the `App` it names, with `App.import_path` set.

    The current directory is importable (as with ``python -m``), so ``taskgate serve
    myapp:app`` finds ``./myapp.py`` even when run through the ``taskgate`` script.
    """
    module_name, attr = split_import_path(path)
    cwd = str(Path.cwd())
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module_name + ".").startswith(exc.name + "."):
            raise ConfigurationError(
                f"app {path!r}: no module named {exc.name!r}"
                f" (is it on PYTHONPATH, or in the current directory?)"
            ) from None
        raise ConfigurationError(f"app {path!r}: importing {module_name} failed: {exc}") from exc
    except ConfigurationError as exc:
        raise ConfigurationError(f"app {path!r}: {exc.message}") from exc
    except Exception as exc:
        raise ConfigurationError(
            f"app {path!r}: importing {module_name} failed: {type(exc).__name__}: {exc}"
        ) from exc
    target: object = module
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ConfigurationError(
                f"app {path!r}: module {module_name} has no attribute {attr!r}"
            ) from None
    if not isinstance(target, App):
        raise ConfigurationError(
            f"app {path!r}: expected a taskgate.App, found {type(target).__name__}"
        )
    target.import_path = f"{module_name}:{attr}"
    return target
