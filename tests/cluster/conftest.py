"""What the cluster tests share: a fresh PostgreSQL database with the ``runs`` table of
`tests.cluster.app`, and the cluster of ``make cluster`` (`scripts.cluster.Cluster`)
started on it, its output in the test's captured stdout."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import psycopg
import pytest
from scripts.cluster import Cluster

from postgres import postgres_database, postgres_databases

from .app import RUNS_TABLE, RUNS_URL

__all__ = ["postgres_database", "postgres_databases"]  # fixtures

APP = "tests.cluster.app:app"


@pytest.fixture
def database(postgres_database: str) -> str:
    """A fresh migrated database, with the empty ``runs`` table."""
    with psycopg.connect(postgres_database, autocommit=True) as conn:
        conn.execute(RUNS_TABLE)
    return postgres_database


POOL_SIZE = "4"
"""Connections per process (docs/deploying.md says a worker needs no more): the five
processes stay well within the server's ``max_connections``, which other tests share."""


def cluster_of(database: str, **env: str) -> Cluster:
    """2 API processes on free ports and 3 worker processes, with ``env`` (say
    ``TASKGATE_LEASE``) in their environment; started and stopped by ``with``."""
    env = {RUNS_URL: database, "TASKGATE_POOL_SIZE": POOL_SIZE, **env}
    return Cluster(database, app=APP, ports=(0, 0), workers=3, env=env, out=sys.stdout)


@pytest.fixture
def cluster(database: str) -> Iterator[Cluster]:
    with cluster_of(database) as running:
        yield running
