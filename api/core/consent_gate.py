"""Whether a lender may read a farmer's profile now, without a node call on the usual read.

A profile read is allowed when, in this order:

1. no revocation made through this service is on record for the pair (`consent_revocation`,
   written before the revocation is relayed, so every service process on the database refuses
   the next read at once; an indexed grant mined after the revocation supersedes the row, and a
   grant through the service deletes it);
2. and the farmer's latest indexed ConsentRegistry event for the lender is a grant that has not
   expired (expiry judged by the later of the server's clock and the indexed chain time, as
   `lending.credit.profiles.IndexedConsentChecker` does);
3. or, when the index shows no active grant (not indexed yet, no follower on this database, a
   grant newer than the index), the chain says so: `consentExpiry` at the latest block. A yes
   is remembered per process for CHAIN_ANSWER_TTL seconds and trusted only while no indexed
   event is newer than the block it was read at and its expiry is still ahead of the chain's
   clock (as last seen).

So a revocation through the service takes effect before its response returns, in every process;
one made directly on chain takes effect once the follower indexes it (its poll interval), or,
where no follower indexes this database, within CHAIN_ANSWER_TTL of a yes the chain gave.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from weakref import WeakKeyDictionary

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Connection, Engine

from api.core.models import ConsentRevocation, utcnow
from chain.client import ChainClient
from indexer.models import Checkpoint, Consent, WindowBlock
from traceability import contracts

CHAIN_ANSWER_TTL = 60.0
"""How long a chain's yes is trusted without the index agreeing (seconds)."""
MAX_CHAIN_ANSWERS = 100_000
"""Remembered chain answers per process (least recently used forgotten first)."""


@dataclass(frozen=True)
class _ChainYes:
    """A consent the chain confirmed: until when, at which block, and when we asked."""

    expires_at: int
    block_number: int
    clock_offset: float  # the chain's time minus the server's when asked
    asked: float


class _ChainAnswers:
    """The chain's recent yes answers of one process, bounded."""

    def __init__(self) -> None:
        self._answers: OrderedDict[tuple[bytes, bytes], _ChainYes] = OrderedDict()
        self._lock = threading.Lock()
        self.clock_offset = 0.0  # the chain's clock ahead of the server's, as last seen

    def get(self, key: tuple[bytes, bytes]) -> _ChainYes | None:
        with self._lock:
            return self._answers.get(key)

    def put(self, key: tuple[bytes, bytes], answer: _ChainYes | None) -> None:
        with self._lock:
            if answer is None:
                self._answers.pop(key, None)
                return
            self._answers[key] = answer
            self._answers.move_to_end(key)
            while len(self._answers) > MAX_CHAIN_ANSWERS:
                self._answers.popitem(last=False)


_ANSWERS: WeakKeyDictionary[Engine, _ChainAnswers] = WeakKeyDictionary()


def _hex_lender(lender: str) -> str:
    """0x + 40 lowercase hex digits."""
    return "0x" + lender.removeprefix("0x").lower()


class ConsentGate:
    """`has_consent` for profile reads from the indexed state, the service's revocations and,
    only when the index shows no active grant, the chain (see the module docstring)."""

    def __init__(self, engine: Engine, chain: ChainClient) -> None:
        self.engine = engine
        self.chain = chain
        self.answers = _ANSWERS.setdefault(engine, _ChainAnswers())

    def has_consent(self, farmer_id: str, lender: str) -> bool:
        """True while `lender` may read the farmer's profile."""
        farmer = bytes.fromhex(farmer_id.removeprefix("0x"))
        who = bytes.fromhex(lender.removeprefix("0x"))
        with self.engine.connect() as conn:
            revoked_at = conn.execute(
                select(ConsentRevocation.block_number).where(
                    ConsentRevocation.farmer == "0x" + farmer.hex(),
                    ConsentRevocation.lender == _hex_lender(lender),
                )  # type: ignore[arg-type]
            ).first()
            event = conn.execute(
                select(Consent.block_number, Consent.granted, Consent.expires_at)
                .where(Consent.farmer == farmer, Consent.lender == who)  # type: ignore[arg-type]
                .order_by(Consent.block_number.desc(), Consent.log_index.desc())  # type: ignore[attr-defined]
                .limit(1)
            ).first()
            indexed_now = _indexed_time(conn) if event is not None and event.granted else 0
        indexed_block = int(event.block_number) if event is not None else -1
        if revoked_at is not None and not (
            event is not None and event.granted and indexed_block > int(revoked_at[0])
        ):
            return False  # revoked through the service, and not granted again since
        now = max(time.time() + self.answers.clock_offset, indexed_now)
        if event is not None and event.granted and int(event.expires_at) > now:
            return True
        return self._chain_says(farmer, who, indexed_block)

    def _chain_says(self, farmer: bytes, lender: bytes, indexed_block: int) -> bool:
        """The chain's answer, or a recent yes of it no indexed event has overtaken."""
        key = (farmer, lender)
        wall = time.time()
        known = self.answers.get(key)
        if (
            known is not None
            and known.block_number >= indexed_block
            and wall - known.asked < CHAIN_ANSWER_TTL
            and wall + known.clock_offset < known.expires_at
        ):
            return True
        block = self.chain.w3.eth.get_block("latest")
        registry = contracts.consent_registry(self.chain)
        expires_at = int(
            registry.functions.consentExpiry(
                farmer, self.chain.w3.to_checksum_address(lender)
            ).call(block_identifier=block["number"])
        )
        offset = float(block["timestamp"]) - wall
        self.answers.clock_offset = max(0.0, offset)
        # The next block is stamped no earlier than now: judge by the later of the two clocks.
        granted = expires_at > max(int(block["timestamp"]), wall)
        answer = _ChainYes(expires_at, int(block["number"]), offset, wall) if granted else None
        self.answers.put(key, answer)
        return granted


def _indexed_time(conn: Connection) -> int:
    """The timestamp of the last indexed block (0 if unknown)."""
    ts = conn.execute(
        select(WindowBlock.timestamp).join(
            Checkpoint,
            Checkpoint.block_number == WindowBlock.number,  # type: ignore[arg-type]
        )
    ).scalar()
    return int(ts or 0)


# --------------------------------------------------------------------------- service revocations


def revocation_pending(engine: Engine, farmer_id: str, lender: str, head_block: int) -> None:
    """Record a revocation about to be relayed: from now on no process lets `lender` read.

    `head_block` is the chain's latest block: the revocation will be mined after it.
    """
    key = {"farmer": farmer_id.lower(), "lender": _hex_lender(lender)}
    with engine.begin() as conn:
        conn.execute(delete(ConsentRevocation).where(*_pair(key)))
        conn.execute(
            ConsentRevocation.__table__.insert().values(  # type: ignore[attr-defined]
                **key, block_number=head_block, revoked_at=utcnow()
            )
        )


def revocation_mined(engine: Engine, farmer_id: str, lender: str, block_number: int) -> None:
    """The revocation is in `block_number`: only a grant mined later supersedes it."""
    key = {"farmer": farmer_id.lower(), "lender": _hex_lender(lender)}
    with engine.begin() as conn:
        conn.execute(update(ConsentRevocation).where(*_pair(key)).values(block_number=block_number))


def revocation_cleared(engine: Engine, farmer_id: str, lender: str) -> None:
    """No revocation stands for the pair (it was refused on chain, or consent was granted again)."""
    key = {"farmer": farmer_id.lower(), "lender": _hex_lender(lender)}
    with engine.begin() as conn:
        conn.execute(delete(ConsentRevocation).where(*_pair(key)))


def _pair(key: dict[str, str]) -> tuple[object, object]:
    """WHERE clauses of one (farmer, lender) pair."""
    return (ConsentRevocation.farmer == key["farmer"], ConsentRevocation.lender == key["lender"])
