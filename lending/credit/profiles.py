"""Profiles and consents for credit decisions, read from the indexer's database.

`IndexedProfileReader` implements lending.credit.access.ProfileReader with
indexer.profiles.load_profile (the `FarmerProfile` valid at the indexer's checkpoint);
`IndexedConsentChecker` implements lending.credit.access.ConsentChecker with
indexer.profiles.has_consent (the farmer's latest indexed ConsentRegistry event for the
lender). The chain-backed alternative is traceability.consent.ConsentService.

Consent fails closed: an unreadable database is a ConsentCheckError, never a yes, and a consent
counts as expired once either the wall clock or the indexed chain time passes its expiry. The
index can lag the chain: a revocation is seen once it is indexed, so a lender that must honour
revocations to the block uses ConsentService.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.engine import Engine

from indexer.db import make_engine
from indexer.models import Checkpoint, WindowBlock
from indexer.profiles import FarmerNotFoundError, FarmerProfile, has_consent, load_profile
from lending.errors import ConsentCheckError, InvalidRequestError, ProfileNotFoundError


def _engine(engine_or_url: Engine | str) -> Engine:
    """An engine for a URL, or the engine given."""
    return make_engine(engine_or_url) if isinstance(engine_or_url, str) else engine_or_url


def _bytes(value: str, size: int, what: str) -> bytes:
    """0x-hex of `size` bytes as bytes."""
    try:
        raw = bytes.fromhex(value.removeprefix("0x"))
    except (ValueError, AttributeError):
        raw = b""
    if len(raw) != size:
        raise InvalidRequestError(f"{what} {value!r} must be 0x + {2 * size} hex digits")
    return raw


class IndexedProfileReader:
    """Farmer profiles from the indexer's database (one read transaction per profile)."""

    def __init__(self, engine_or_url: Engine | str) -> None:
        self._engine = _engine(engine_or_url)

    def read_profile(self, farmer_id: str) -> FarmerProfile:
        """The farmer's FarmerProfile; ProfileNotFoundError if the farmer is not indexed."""
        farmer = _bytes(farmer_id, 32, "farmer id")
        try:
            with self._engine.connect() as conn:
                return load_profile(conn, farmer)
        except FarmerNotFoundError as exc:
            raise ProfileNotFoundError(
                f"no profile for farmer {farmer_id}: {exc}; check the id or wait for the "
                "indexer to catch up"
            ) from None


class IndexedConsentChecker:
    """Consent from the indexed ConsentRegistry events; any failure is a ConsentCheckError."""

    def __init__(self, engine_or_url: Engine | str, clock: Callable[[], float] = time.time) -> None:
        self._engine = _engine(engine_or_url)
        self._clock = clock

    def has_consent(self, farmer_id: str, lender: str) -> bool:
        """True while the farmer's latest indexed consent event for `lender` is an active grant."""
        farmer = _bytes(farmer_id, 32, "farmer id")
        who = _bytes(lender, 20, "lender")
        try:
            with self._engine.connect() as conn:
                chain_now = conn.execute(
                    select(WindowBlock.timestamp).join(
                        Checkpoint, Checkpoint.block_number == WindowBlock.number
                    )  # type: ignore[arg-type]
                ).scalar()
                now = max(int(self._clock()), int(chain_now or 0))
                return has_consent(conn, farmer, who, now)
        except Exception as exc:
            raise ConsentCheckError(
                f"could not read consent of farmer {farmer_id} for lender {lender} from the "
                f"indexer database: {exc}; no decision was made, retry when the database answers"
            ) from exc
