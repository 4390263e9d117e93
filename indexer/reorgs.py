"""Reorgs: how the indexer notices that the chain under its checkpoint changed, and rolls back.

Every batch the engine writes also stores the hashes of its newest `window` blocks
(WindowBlock), in the same transaction as its events and checkpoint. Before every read the
checkpoint's block hash is compared with the node's (`tip_is_current`). On a mismatch the
newest stored block the node still has is the common ancestor (`common_ancestor`), and
`roll_back` deletes everything above it (raw events, derived rows, window hashes, contracts
announced above it) and moves the checkpoint there, in one transaction: a crash leaves either
the old state or the rolled-back one. A reorg deeper than the window raises DeepReorgError
before anything is deleted. A fork change in the middle of a run (a read that does not extend
the previous one) ends the run early (engine `_joined`); the next tip check rolls back.
"""

from __future__ import annotations

from sqlalchemy import Engine, delete, select, update

from indexer.contracts import load_contracts
from indexer.errors import DeepReorgError
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
        raise DeepReorgError(checkpoint, low, window)
    return ancestor


def roll_back(engine: Engine, number: int, block_hash: bytes) -> list[ContractInfo]:
    """Delete everything above block `number` and move the checkpoint there, in one
    transaction; returns the contracts still followed (clones announced above it are gone)."""
    with engine.begin() as conn:
        conn.execute(delete(RawEvent).where(RawEvent.block_number > number))  # type: ignore[arg-type]
        rollback_derived(conn, number)
        conn.execute(delete(WindowBlock).where(WindowBlock.number > number))  # type: ignore[arg-type]
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
