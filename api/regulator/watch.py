"""The risk monitor in real time: the rules run after the follower indexes new blocks.

`tealedger serve`'s follower calls the watch after every committed batch and poll. The watch
scans when the index has moved past the block it last scanned and at least `every_seconds`
have passed (a catch-up of thousands of batches scans a few times, not thousands), so an alert
appears about a minute after the transactions that raise it. It runs in the follower's thread,
which holds the indexer lock: with several replicas only the indexing one scans.

It holds while `tealedger demo` is still loading its season (`held`): the demo records a past
season in bulk, cooperative by cooperative, and a flush half loaded makes plots picked early
look far above the rest (a scan at block 58 of the demo once raised a false harvest_implausible
alert). The demo scans the whole season itself when it is complete; the watch scans from then on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from sqlalchemy import Engine

from api.regulator.service import ScanReport, scan_database
from indexer.engine import Progress

log = logging.getLogger("tealedger.risk")


class RiskWatch:
    """Scan after indexing, at most once per `every_seconds`, only when new blocks came in."""

    def __init__(
        self,
        database_url: str,
        service: Engine,
        every_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        held: Callable[[], bool] = lambda: False,
    ) -> None:
        self.database_url = database_url
        self.held = held
        self.service = service
        self.every = every_seconds
        self.clock = clock
        self.scanned_block = -1
        self.scanned_at: float | None = None
        self.last: ScanReport | None = None

    def __call__(self, progress: Progress) -> None:
        """The follower's hook."""
        if progress.checkpoint <= self.scanned_block or not self._due() or self.held():
            return
        self.last = scan_database(self.database_url, self.service)
        self.scanned_block, self.scanned_at = progress.checkpoint, self.clock()
        if self.last.new:
            log.info("risk scan at block %d: %d new alert(s) %s", progress.checkpoint,
                     self.last.new, self.last.by_rule)  # fmt: skip

    def _due(self) -> bool:
        """True when the last scan is at least `every` seconds old (or there was none)."""
        return self.scanned_at is None or self.clock() - self.scanned_at >= self.every
