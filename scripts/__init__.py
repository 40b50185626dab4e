"""Developer scripts run by the Makefile (``python -m scripts.NAME``); not installed."""
