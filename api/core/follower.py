"""The indexer follower inside `tealedger serve`: keeps the database the reads come from current.

One background thread takes the database's indexer lock (indexer/lock.py) and runs the
indexer's follow loop on its own writer engine and chain client. It never stops the service:
while another indexer holds the lock it stands by (the other one keeps the reads current) and
retries the lock; a failure (node down, nothing deployed yet, a reorg deeper than the window)
is logged, counted and shown in /healthz, and retried with a growing delay. Stopping sets an
event that the follow loop waits on and that the progress callback checks after every
committed batch, so a long catch-up stops between two batches, never inside one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from enum import StrEnum

from pydantic import BaseModel
from sqlalchemy import Engine

from api.core.metrics import ERRORS, INDEXER_LAG
from chain.client import ChainClient
from chain.config import ChainSettings
from indexer.db import make_engine
from indexer.engine import IndexerConfig, Progress
from indexer.errors import IndexerLockedError
from indexer.lock import IndexerLock
from indexer.runner import make_indexer

log = logging.getLogger("tealedger.follower")


class FollowerState(StrEnum):
    """Where the follower is."""

    OFF = "off"  # `serve --no-indexer`: another process indexes this database
    STARTING = "starting"
    FOLLOWING = "following"
    STANDBY = "standby"  # another indexer holds the lock
    FAILED = "failed"  # retrying after an error
    STOPPED = "stopped"


class FollowerStatus(BaseModel):
    """What /healthz shows of the follower (`off` under `serve --no-indexer`)."""

    state: FollowerState
    checkpoint: int | None = None
    head: int | None = None
    lag: int | None = None
    error: str | None = None
    failures: int = 0


class FollowerConfigError(Exception):
    """The settings name a chain the follower cannot follow."""


class _Stopped(Exception):
    """Raised from the progress callback to leave a catch-up between two batches."""


class Follower:
    """Runs the indexer's follow loop in a background thread under the indexer lock."""

    def __init__(
        self,
        database_url: str,
        chain: ChainSettings,
        config: IndexerConfig | None = None,
        retry_seconds: float = 2.0,
        max_retry_seconds: float = 60.0,
        after_progress: Callable[[Progress], None] | None = None,
    ) -> None:
        self.database_url = database_url
        self.chain = chain
        # Inline: a reader thread would compete with the request handlers for the GIL, and a
        # follower at the head reads a few blocks at a time anyway.
        self.config = config or IndexerConfig(reader="inline")
        self.retry_seconds = retry_seconds
        self.max_retry_seconds = max_retry_seconds
        # Work that follows the index (the risk monitor's scans), run in this thread so it
        # runs only where the indexer lock is held: one replica, never two at once.
        self.after_progress = after_progress
        self._status = FollowerStatus(state=FollowerState.STARTING)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._guard = threading.Lock()

    # ------------------------------------------------------------------------- control

    def start(self) -> None:
        """Start the thread (once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="indexer-follower", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 30.0) -> bool:
        """Ask the thread to stop and wait for it; True if it ended within `timeout`."""
        self._stop.set()
        if self._thread is None:
            return True
        self._thread.join(timeout)
        if self._thread.is_alive():
            # A batch still being read from the node: the thread is a daemon and the batch's
            # transaction is not committed, so exiting now loses nothing.
            log.warning("indexer follower still busy after %.0fs; leaving it", timeout)
            return False
        return True

    @property
    def alive(self) -> bool:
        """True while the thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def status(self) -> FollowerStatus:
        """A copy of the current status."""
        with self._guard:
            return self._status.model_copy()

    # -------------------------------------------------------------------------- thread

    def _set(self, **changes: object) -> None:
        """Update the status under the guard."""
        with self._guard:
            for name, value in changes.items():
                setattr(self._status, name, value)

    def _run(self) -> None:
        """Thread body: lock, follow, and on any failure report and retry until stopped."""
        engine = make_engine(self.database_url, writer=True)
        lock = IndexerLock(engine)
        held = False
        delay = self.retry_seconds
        try:
            while not self._stop.is_set():
                try:
                    self._check_followable()  # before the lock: one that cannot follow holds none
                    if not held:
                        lock.acquire()
                        held = True
                    self._follow(engine)
                except _Stopped:
                    break
                except IndexerLockedError as exc:
                    self._standby(str(exc))
                    self._stop.wait(self.retry_seconds)
                    continue
                except Exception as exc:  # a thread that dies silently would freeze the reads
                    self._failed(exc)
                    self._stop.wait(delay)
                    delay = min(delay * 2, self.max_retry_seconds)
                    continue
                delay = self.retry_seconds
        finally:
            if held:
                lock.release()
            engine.dispose()
            self._set(state=FollowerState.STOPPED)
            log.info("indexer follower stopped")

    def _check_followable(self) -> None:
        """FollowerConfigError for a chain no follower can follow (the embedded EVM)."""
        if self.chain.backend == "embedded":
            raise FollowerConfigError(
                "the embedded EVM lives inside one process and cannot be followed: point the "
                "service at a node (TEALEDGER_BACKEND=anvil|ganache|rpc) or run it --no-indexer"
            )

    def _follow(self, engine: Engine) -> None:
        """Prepare the indexer (migrate, pin the chain, register contracts) and follow."""
        client = ChainClient(self.chain)
        indexer = make_indexer(client, engine, self.config, on_progress=self._progress)
        indexer.prepare()
        log.info("indexer follower following %s", client.node.url)
        indexer.follow(self._stop)

    def _progress(self, progress: Progress) -> None:
        """After every committed batch and every poll: publish the lag; leave if stopping."""
        INDEXER_LAG.set(progress.lag)
        previous = self.status()
        self._set(
            state=FollowerState.FOLLOWING,
            checkpoint=progress.checkpoint,
            head=progress.head,
            lag=progress.lag,
            error=None,
        )
        if previous.state is not FollowerState.FOLLOWING:
            log.info("indexer follower at block %d (lag %d)", progress.checkpoint, progress.lag)
        if self._stop.is_set():
            raise _Stopped
        if self.after_progress is not None:
            self._after(progress)

    def _after(self, progress: Progress) -> None:
        """Run the follow-up work; its failure is logged and counted, never stops indexing."""
        try:
            self.after_progress(progress)  # type: ignore[misc]
        except Exception as exc:
            ERRORS.labels("after_indexing").inc()
            log.error("work after indexing failed: %s: %s", type(exc).__name__, exc)

    def _standby(self, reason: str) -> None:
        """Another indexer writes this database: serve its results, retry the lock later."""
        if self.status().state is not FollowerState.STANDBY:
            log.info("indexer follower on standby: %s", reason)
        self._set(state=FollowerState.STANDBY, error=reason)

    def _failed(self, exc: Exception) -> None:
        """Log, count and show an error; the caller retries."""
        message = f"{type(exc).__name__}: {exc}"
        failures = self.status().failures + 1
        self._set(state=FollowerState.FAILED, error=message, failures=failures)
        ERRORS.labels("indexer").inc()
        log.error("indexer follower failed (attempt %d), retrying: %s", failures, message)
