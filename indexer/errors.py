"""Exceptions of the indexer; each says what happened and what to do about it."""

from __future__ import annotations


class IndexerError(Exception):
    """Root of every error raised by the indexer package."""


class DatabaseConfigError(IndexerError):
    """The database URL is missing, malformed or names an unsupported database."""


class IndexerLockedError(IndexerError):
    """Another indexer already writes to this database."""


class ChainMismatchError(IndexerError):
    """The database was filled from another chain (different chain id or genesis block)."""


class DeepReorgError(IndexerError):
    """The chain reorganised deeper than the unfinalized window; nothing was changed."""

    def __init__(self, checkpoint: int, window_low: int, kept: int, window: int) -> None:
        super().__init__(
            f"the chain reorganised below block {window_low}: none of the {kept} block hashes "
            f"kept for blocks {window_low}..{checkpoint} (--window {window}) is still on the "
            "node's chain. The "
            "database was left untouched at block "
            f"{checkpoint}. Check the node (is it the same network?), then either rebuild the "
            "database from scratch against the new chain or raise --window and re-sync."
        )
        self.checkpoint = checkpoint
        self.window_low = window_low
        self.kept = kept


class UnstableChainError(IndexerError):
    """The node kept changing its answer (logs and headers of different forks) while read."""


class NothingToIndexError(IndexerError):
    """No project contract is deployed on the connected chain."""


class HistoryPrunedError(IndexerError):
    """The node dropped a block's transactions and logs before they were indexed."""

    def __init__(self, number: int) -> None:
        super().__init__(
            f"the node no longer holds the transactions and logs of block {number} (an anvil "
            "started with TEALEDGER_HISTORY_BLOCKS keeps only its latest blocks), and they were "
            "not indexed yet; nothing of that block was written. Start the node again with more "
            "history blocks (or without the setting) and rebuild the index from the chain."
        )
        self.number = number
