"""Alembic migrations of the indexer's tables (applied by indexer.db.migrate)."""
