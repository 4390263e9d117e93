"""Farmer profiles and consents for lenders, read from the indexer's tables.

The indexer writes into the app's database (`settings.database_url`); its tables have their own
metadata and names, so they sit beside the API's. Scoring reads profiles through
lending.credit.profiles.IndexedProfileReader; this module adds what the routes need around it
(reads go through api/core/indexed.py): id parsing and the list
of farmers whose latest indexed consent for a lender is active. Whether a profile may be read
is decided at the moment of the read by api/core/consent_gate.py, not here.
"""

from __future__ import annotations

from sqlalchemy import and_, func, select
from sqlalchemy.engine import Connection

from api.core.ids import parse_id
from indexer.models import Consent, Farmer


def farmer_bytes(farmer_id: str) -> bytes:
    """0x + 64 hex digits as bytes, else 422."""
    return parse_id(farmer_id, "farmer")


def consenting_farmers(
    conn: Connection, lender: str, now: int, limit: int, offset: int
) -> tuple[list[tuple[bytes, bytes, int]], int]:
    """(farmer, cooperative, expires_at) of farmers whose latest consent for `lender` is
    active at `now`, by farmer id; and their total count."""
    lender_b = bytes.fromhex(lender.removeprefix("0x").lower())
    latest = (
        select(
            Consent.farmer,
            Consent.granted,
            Consent.expires_at,
            func.row_number()
            .over(
                partition_by=Consent.farmer,
                order_by=(Consent.block_number.desc(), Consent.log_index.desc()),  # type: ignore[attr-defined]
            )
            .label("rank"),
        )
        .where(Consent.lender == lender_b)  # type: ignore[arg-type]
        .subquery()
    )
    active = and_(latest.c.rank == 1, latest.c.granted.is_(True), latest.c.expires_at > now)
    total = conn.execute(select(func.count()).select_from(latest).where(active)).scalar_one()
    rows = conn.execute(
        select(latest.c.farmer, Farmer.cooperative, latest.c.expires_at)
        .join(Farmer, Farmer.farmer == latest.c.farmer)  # type: ignore[arg-type]
        .where(active)
        .order_by(latest.c.farmer)
        .limit(limit)
        .offset(offset)
    ).all()
    return [(bytes(f), bytes(c), int(e)) for f, c, e in rows], int(total)
