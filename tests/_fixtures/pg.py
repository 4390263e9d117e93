"""Throwaway PostgreSQL databases on the local server (the test suite runs on both databases)."""

from __future__ import annotations

import os
import secrets
from typing import Any

import psycopg

PG_DSN = os.environ.get(
    "TEALEDGER_TEST_PG", "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
)
PG_URL = "postgresql+psycopg://{user}@{host}:{port}/{db}"


def pg_admin() -> psycopg.Connection[Any] | None:
    """An autocommit connection to the PostgreSQL server, or None if none answers."""
    try:
        return psycopg.connect(PG_DSN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError:
        return None


class PgDatabases:
    """Creates throwaway databases on the local server and drops them at the end."""

    def __init__(self, admin: psycopg.Connection[Any]) -> None:
        self.admin = admin
        self.prefix = f"tealedger_test_{secrets.token_hex(4)}"
        self.created: list[str] = []
        info = admin.info
        self._parts = {"user": info.user, "host": info.host, "port": info.port}

    def new(self) -> str:
        """A fresh empty database; returns its SQLAlchemy URL."""
        name = f"{self.prefix}_{len(self.created)}"
        self.admin.execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return PG_URL.format(db=name, **self._parts)

    def drop_all(self) -> None:
        """Drop every database this session made."""
        for name in self.created:
            self.admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.admin.close()
