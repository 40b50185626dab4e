"""taskgate's benchmark suite: `make bench` (or `python -m bench.run`)."""
