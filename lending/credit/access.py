"""Who may read a farmer's profile, and the log of every read and refusal.

`read_with_consent` is the one way a lender reads a profile: it checks the farmer's consent
first (failing closed: a checker that cannot answer is a ConsentCheckError, never a yes), logs
a refusal without reading, and logs every read with the block the profile was built at.
`decide` reads through it; so can the service's profile view, with its own `parse`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from enum import StrEnum
from typing import Protocol, TypeVar

from pydantic import BaseModel, ConfigDict

from lending.errors import (
    ConsentCheckError,
    ConsentRequiredError,
    ProfileDataError,
    ProfileNotFoundError,
)


class ConsentChecker(Protocol):
    """Answers whether `lender` holds the farmer's active consent now.

    traceability.consent.ConsentService (on chain) and lending.credit.profiles
    .IndexedConsentChecker (indexed) both satisfy it structurally: lending never imports
    traceability.
    """

    def has_consent(self, farmer_id: str, lender: str) -> bool:
        """True while the consent is active."""
        ...


class ProfileReader(Protocol):
    """Reads a farmer's current profile (a Mapping or an object, see lending/credit/features.py)."""

    def read_profile(self, farmer_id: str) -> object:
        """The profile; ProfileNotFoundError if there is none."""
        ...


class AccessOutcome(StrEnum):
    """What happened when a lender asked for a profile."""

    READ = "read"
    READ_INVALID = "read_invalid"
    """Read, but the data could not be scored (ProfileDataError)."""
    REFUSED_NO_CONSENT = "refused_no_consent"


class ProfileAccess(BaseModel):
    """One entry of the profile access log."""

    model_config = ConfigDict(frozen=True)

    farmer_id: str
    lender: str
    purpose: str
    outcome: AccessOutcome
    at: datetime
    decision_id: str | None = None
    block_number: int | None = None
    block_hash: str | None = None


class AccessLog(Protocol):
    """Where profile accesses are recorded (credit.store.CreditStore, or MemoryAccessLog)."""

    def record_access(self, entry: ProfileAccess) -> None:
        """Append one entry; entries are never changed."""
        ...


class StaticConsent:
    """Consents held in memory as (farmer id, lender) pairs: simulations and tests."""

    def __init__(self, pairs: Iterable[tuple[str, str]] = (), *, everyone: bool = False) -> None:
        self._pairs = {(f.lower(), lender.lower()) for f, lender in pairs}
        self._everyone = everyone

    def has_consent(self, farmer_id: str, lender: str) -> bool:
        """True for the stored pairs (or everyone, for simulations)."""
        return self._everyone or (farmer_id.lower(), lender.lower()) in self._pairs


class MappingProfileReader:
    """Profiles from a mapping of farmer id -> profile."""

    def __init__(self, profiles: Mapping[str, object]) -> None:
        self._profiles = {k.lower(): v for k, v in profiles.items()}

    def read_profile(self, farmer_id: str) -> object:
        """The profile, or ProfileNotFoundError."""
        try:
            return self._profiles[farmer_id.lower()]
        except KeyError:
            raise ProfileNotFoundError(f"no profile for farmer {farmer_id}") from None


class MemoryAccessLog:
    """An in-memory, append-only access log."""

    def __init__(self) -> None:
        self.entries: list[ProfileAccess] = []

    def record_access(self, entry: ProfileAccess) -> None:
        """Append one entry."""
        self.entries.append(entry)


class Located(Protocol):
    """A profile as read, with the chain block it reflects (e.g. features.ProfileSnapshot)."""

    @property
    def block_number(self) -> int:
        """The block the profile was built at."""
        ...

    @property
    def block_hash(self) -> str:
        """That block's hash, 0x-hex."""
        ...


P = TypeVar("P", bound=Located)


def check_consent(consent: ConsentChecker, farmer_id: str, lender: str) -> bool:
    """The checker's answer; any failure to answer is a ConsentCheckError (fail closed)."""
    try:
        return bool(consent.has_consent(farmer_id, lender))
    except ConsentCheckError:
        raise
    except Exception as exc:  # whatever the source (node, database), consent is unproven
        raise ConsentCheckError(
            f"could not check the consent of farmer {farmer_id} for lender {lender}: {exc}; "
            "nothing was read and no decision was made: retry when the consent source answers"
        ) from exc


def read_with_consent(
    farmer_id: str,
    lender: str,
    *,
    purpose: str,
    consent: ConsentChecker,
    profiles: ProfileReader,
    access_log: AccessLog,
    parse: Callable[[object], P],
    at: datetime,
    decision_id: str | None = None,
) -> P:
    """Check consent, read the profile and `parse` it, logging the read or the refusal.

    No consent: the refusal is logged and ConsentRequiredError raised, nothing is read. A
    profile `parse` refuses (ProfileDataError) is logged as read but invalid, then re-raised.
    """
    access = {"farmer_id": farmer_id, "lender": lender, "purpose": purpose, "at": at}
    if not check_consent(consent, farmer_id, lender):
        access_log.record_access(ProfileAccess(**access, outcome=AccessOutcome.REFUSED_NO_CONSENT))
        raise ConsentRequiredError(farmer_id, lender)
    access["decision_id"] = decision_id
    try:
        read = parse(profiles.read_profile(farmer_id))
    except ProfileDataError:
        access_log.record_access(ProfileAccess(**access, outcome=AccessOutcome.READ_INVALID))
        raise
    access_log.record_access(ProfileAccess(
        **access, outcome=AccessOutcome.READ, block_number=read.block_number,
        block_hash=read.block_hash,
    ))  # fmt: skip
    return read
