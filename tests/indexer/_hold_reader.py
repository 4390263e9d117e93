"""An indexer stopped while its reader process has a batch to hand over (run by
test_index_crash.py): it holds the lock and a database connection, starts a process reader
over the whole chain in one read, takes nothing from it, prints the reader's pid and waits to
be killed. Usage: python -m tests.indexer._hold_reader DATABASE_URL (chain from TEALEDGER_*)."""

from __future__ import annotations

import sys
import time

from chain.client import ChainClient
from chain.config import ChainSettings
from indexer.db import make_engine
from indexer.lock import IndexerLock
from indexer.readers import ProcessReader
from indexer.runner import chain_source


def main(url: str) -> None:
    """Hold the lock, start the reader, report its pid, wait."""
    engine = make_engine(url, writer=True)
    with IndexerLock(engine):
        with engine.connect() as conn:  # a pooled connection, as the writer has
            conn.exec_driver_sql("SELECT 1")
        source = chain_source(ChainClient(ChainSettings()))
        source.fetcher.adaptive.span = source.fetcher.adaptive.max_span  # one read, one message
        reader = ProcessReader(source, 0, source.head())
        print(reader.pid, flush=True)
        time.sleep(600)


if __name__ == "__main__":
    main(sys.argv[1])
