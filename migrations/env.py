"""Alembic environment of the project's database: runs on the connection `indexer.db.migrate`
passes in (the indexer's tables, the service's and the credit store's: one history).

Applying revisions needs no model: only autogenerate (`alembic -x url=... revision
--autogenerate` from the command line) compares against every model, so only that path imports
them (migrations/targets.py), and the indexer applying the history loads no service code.
"""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import create_engine

from indexer.db import VERSION_TABLE
from migrations.env_filter import ours

config = context.config


def _run(connection: object, target_metadata: Any = None) -> None:
    """Configure Alembic on a connection and run the migrations."""
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        version_table=VERSION_TABLE,
        render_as_batch=True,  # SQLite alters tables by copying them
        compare_type=True,
        include_object=ours,  # other packages may keep their tables in the same database
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:  # `alembic -x url=... revision --autogenerate` from the command line
    from migrations.targets import schema_metadata

    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    with create_engine(str(url)).connect() as conn:
        _run(conn, schema_metadata())
        conn.commit()
