"""Alembic revisions of the indexer schema."""
