"""Shared by the service and credit migrations: adopt tables an older `create_all` made."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

Indexes = tuple[tuple[str, list[str], bool], ...]


def create_table(name: str, *items: sa.SchemaItem, indexes: Indexes = ()) -> None:
    """Create a table and its indexes, unless it exists already.

    Before these tables had migrations the service and the credit store made them with
    SQLModel's `create_all` from the same models; such a database is adopted as it is.
    """
    if sa.inspect(op.get_bind()).has_table(name):
        return
    op.create_table(name, *items)
    for index, columns, unique in indexes:
        op.create_index(index, name, columns, unique=unique)
