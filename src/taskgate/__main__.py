"""``python -m taskgate``: the same as the ``taskgate`` command."""

from __future__ import annotations

from taskgate.cli import main

if __name__ == "__main__":
    main()
