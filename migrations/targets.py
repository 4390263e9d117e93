"""The models the one Alembic history describes: the indexer's, the service's, the credit
store's, the risk monitor's."""

from __future__ import annotations

from sqlalchemy import MetaData
from sqlmodel import SQLModel

from indexer.models import metadata as indexer_metadata


def schema_metadata() -> list[MetaData]:
    """Every model the migrations must match (imported here so their tables are registered)."""
    import api.core.models  # noqa: F401
    import lending.credit.models
    import lending.loans.models  # noqa: F401
    import risk.models  # noqa: F401
    import traceability.epcis.capture_models  # noqa: F401

    return [indexer_metadata, SQLModel.metadata]
