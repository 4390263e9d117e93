"""Reading ahead of the writer: batches from a background thread or a forked process.

The engine writes one batch while the next ones are read: `ThreadReader` reads in a thread (the
socket and SQLite release the GIL, so reading and writing overlap), `ProcessReader` in a
forked process (it pays for pickling every event, so it helps only on a host with idle cores).
Either hands batches over in order and raises a reader's failure in the consuming thread.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.queues
import os
import queue
import signal
import threading
from collections.abc import Iterator
from typing import Any

from chain.rpc import LogQueryError
from indexer.errors import IndexerError, UnstableChainError
from indexer.source import Batch, ChainSource


class ThreadReader:
    """Reads batches in a background thread, a couple ahead of the writer."""

    _DONE = object()

    def __init__(self, source: ChainSource, start: int, target: int, depth: int = 2) -> None:
        self._source = source
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(start, target), name="indexer-reader", daemon=True
        )
        self._thread.start()

    def _run(self, start: int, target: int) -> None:
        """Producer loop."""
        try:
            while start <= target and not self._stop.is_set():
                batch = self._source.read(start, target)
                self._put(batch)
                start = batch.stop + 1
            self._put(self._DONE)
        except BaseException as exc:  # handed to the consumer, raised there
            self._put(exc)

    def _put(self, item: object) -> None:
        """Queue an item unless stopped."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def __iter__(self) -> Iterator[Batch]:
        """Batches until the target; a reader exception is raised here."""
        while True:
            item = self._queue.get()
            if item is self._DONE:
                return
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, Batch)
            yield item

    def close(self) -> None:
        """Stop the producer and wait for it."""
        self._stop.set()
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join(timeout=30)


class ProcessReader:
    """Reads and decodes batches in a forked process; this process only projects and writes.

    Fetching, JSON parsing and decoding hold the GIL, so a thread cannot overlap them with the
    writer: a process can. Batches cross as plain tuples.
    """

    def __init__(self, source: ChainSource, start: int, target: int, depth: int = 3) -> None:
        self._source = source
        ctx = multiprocessing.get_context("fork")
        self._queue: multiprocessing.queues.Queue[Any] = ctx.Queue(maxsize=depth)
        self._proc = ctx.Process(
            target=_read_loop, args=(source, start, target, self._queue, os.getpid()), daemon=True
        )
        self._proc.start()

    def __iter__(self) -> Iterator[Batch]:
        """Decoded batches until the target; a reader failure is raised here."""
        while True:
            try:
                kind, payload = self._queue.get(timeout=1.0)
            except queue.Empty:
                if not self._proc.is_alive():
                    raise UnstableChainError(
                        f"the log reader process died (exit code {self._proc.exitcode})"
                    ) from None
                continue
            if kind == "done":
                return
            if kind == "error":
                raise _reraise(*payload)
            batch = Batch.from_wire(payload)
            self._source.recovered_total += batch.recovered_blocks
            yield batch

    def close(self) -> None:
        """Stop the reader process."""
        if self._proc.is_alive():
            self._proc.terminate()
        self._proc.join(timeout=10)
        self._queue.close()
        self._queue.cancel_join_thread()


def _read_loop(
    source: ChainSource, start: int, target: int, out: Any, parent: int
) -> None:  # pragma: no cover - runs in the forked reader process
    """Reader process body: read raw batches and send them until the target or an error."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    source.reconnect()

    def send(item: tuple[str, Any]) -> None:
        while True:
            try:
                out.put(item, timeout=0.5)
                return
            except queue.Full:
                if os.getppid() != parent:  # the indexer died: do not linger
                    os._exit(0)

    try:
        while start <= target:
            batch = source.read(start, target)
            send(("batch", batch.to_wire()))
            start = batch.stop + 1
        send(("done", None))
    except BaseException as exc:
        send(("error", (type(exc).__name__, str(exc))))
    out.close()
    out.join_thread()


def _reraise(kind: str, message: str) -> Exception:
    """Rebuild a reader process's exception on this side."""
    if kind in ("LogQueryError", "RpcError", "RangeTooLargeError"):
        return LogQueryError(message)
    if kind == "UnstableChainError":
        return UnstableChainError(message)
    return IndexerError(f"log reader failed: {kind}: {message}")
