"""Reorgs: how the indexer notices that the chain under its checkpoint changed, and rolls back.

Every batch the engine writes also stores the hashes of its newest `window` blocks
(WindowBlock), in the same transaction as its events and checkpoint. Before every read the
checkpoint's block hash is compared with the node's (`tip_is_current`). On a mismatch the
newest stored block the node still has is the common ancestor (`common_ancestor`), and
`roll_back` deletes everything above it (raw events, derived rows, window hashes, contracts
announced above it) and moves the checkpoint there, in one transaction: a crash leaves either
the old state or the rolled-back one. A reorg deeper than the window raises DeepReorgError
before anything is deleted. A rollback also refills the window below the ancestor from the
node's headers (`window_below`): the hashes pruned while the old fork's tip was higher would
otherwise be missing, and a later reorg reaching below them would be refused as too deep
although a fresh database handles it. A fork change in the middle of a run (a read that does
not extend the previous one) ends the run early (engine `_joined`); the next tip check rolls
back.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

from sqlalchemy import Engine, delete, insert, select, update

from chain.logs import Header
from indexer.contracts import load_contracts
from indexer.errors import DeepReorgError, UnstableChainError
from indexer.models import Checkpoint, IndexedContract, RawEvent, WindowBlock
from indexer.projections import rollback_derived
from indexer.source import ChainSource, ContractInfo


def tip_is_current(source: ChainSource, number: int, block_hash: bytes) -> bool:
    """True if the node still has `block_hash` at block `number` (or nothing is indexed yet)."""
    if number < 0:
        return True
    node = source.header(number)
    return node is not None and node.hash == block_hash


def common_ancestor(
    engine: Engine, source: ChainSource, checkpoint: int, window: int
) -> tuple[int, bytes]:
    """(number, hash) of the newest stored window block the node still has.

    Raises DeepReorgError when the node has none of them: the fork is older than the window.
    """
    with engine.connect() as conn:
        stored = conn.execute(
            select(WindowBlock.number, WindowBlock.hash).order_by(WindowBlock.number.desc())  # type: ignore[attr-defined]
        ).all()
    node = source.headers([n for n, _ in stored])
    ancestor = next(
        ((n, h) for (n, h), found in zip(stored, node, strict=True) if found and found.hash == h),
        None,
    )
    if ancestor is None:
        low = stored[-1][0] if stored else checkpoint
        raise DeepReorgError(checkpoint, low, len(stored), window)
    return ancestor


def window_below(source: ChainSource, low: int, number: int, block_hash: bytes) -> list[Header]:
    """The node's headers of blocks low..number, checked to chain up to `block_hash` at
    `number` (the common ancestor): the window a fresh database would hold there."""
    found = source.headers(range(low, number + 1))
    headers = [h for h in found if h is not None]
    chained = len(headers) == len(found) and all(
        cur.parent_hash == prev.hash for prev, cur in pairwise(headers)
    )
    if not chained or not headers or headers[-1].hash != block_hash:
        raise UnstableChainError(
            f"the node changed blocks {low}..{number} while the indexer rolled back to block "
            f"{number}; nothing was changed: run the indexer again"
        )
    return headers


def roll_back(
    engine: Engine, number: int, block_hash: bytes, below: Sequence[Header] = ()
) -> list[ContractInfo]:
    """Delete everything above block `number`, refill the window below it from `below` (the
    node's headers up to the ancestor, see window_below) and move the checkpoint there, in one
    transaction; returns the contracts still followed (clones announced above it are gone)."""
    with engine.begin() as conn:
        conn.execute(delete(RawEvent).where(RawEvent.block_number > number))  # type: ignore[arg-type]
        rollback_derived(conn, number)
        conn.execute(delete(WindowBlock).where(WindowBlock.number > number))  # type: ignore[arg-type]
        refill = [
            {"number": h.number, "hash": h.hash, "parent_hash": h.parent_hash,
             "timestamp": h.timestamp}
            for h in below if h.number < number
        ]  # fmt: skip
        if refill:
            # Equal hashes at the ancestor mean equal history below it: stored rows there are
            # the node's too, so replacing them changes nothing but fills the gaps.
            conn.execute(delete(WindowBlock).where(WindowBlock.number < number))  # type: ignore[arg-type]
            conn.execute(insert(WindowBlock), refill)
        conn.execute(
            delete(IndexedContract).where(
                IndexedContract.parent.is_not(None),  # type: ignore[union-attr]
                IndexedContract.from_block > number,  # type: ignore[arg-type]
            )
        )
        contracts = load_contracts(conn)
        conn.execute(
            update(Checkpoint)
            .where(Checkpoint.id == 1)
            .values(  # type: ignore[arg-type]
                block_number=number, block_hash=block_hash
            )
        )
    return contracts
