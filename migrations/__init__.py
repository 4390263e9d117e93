"""The project's one schema history (Alembic): the indexer's tables, the service's and the
credit store's. `indexer.db.migrate` applies it; `targets.py` names every model it must match."""
