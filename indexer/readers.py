"""Reading ahead of the writer: batches from a background thread or a forked process.

The engine writes one batch while the next ones are read: `ThreadReader` reads in a thread (the
socket and SQLite release the GIL, so reading and writing overlap), `ProcessReader` in a
forked process (it pays for pickling every event, so it helps only on a host with idle cores).
Either hands batches over in order and raises a reader's failure in the consuming thread. The
forked process lets go of the indexer's lock and database connections at once, and ends with
the indexer, however it ends.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import queue
import signal
import stat
import sys
import threading
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection
from typing import Any

from chain.rpc import LogQueryError
from indexer.errors import IndexerError, UnstableChainError
from indexer.lock import let_go
from indexer.source import Batch, ChainSource

PR_SET_PDEATHSIG = 1  # prctl option: signal this process when its parent thread exits


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
    writer: a process can. Batches cross a pipe as plain tuples. The child never outlives this
    process (a kill -9 included) and never holds its database lock or connections.
    """

    def __init__(self, source: ChainSource, start: int, target: int, depth: int = 3) -> None:
        self._source = source
        ctx = multiprocessing.get_context("fork")  # cheap, and the source needs no pickling
        receive, send = ctx.Pipe(duplex=False)
        self._conn = receive
        self._proc = ctx.Process(
            target=_read_loop,
            args=(source, start, target, send, receive, os.getpid(), depth),
            name="indexer-reader",
            daemon=True,
        )
        self._proc.start()
        send.close()  # the child's end: once the child is gone, this side reads EOF

    @property
    def pid(self) -> int | None:
        """The reader process's pid."""
        return self._proc.pid

    def __iter__(self) -> Iterator[Batch]:
        """Decoded batches until the target; a reader failure is raised here."""
        while True:
            if not self._conn.poll(1.0):
                if not self._proc.is_alive():
                    raise self._died()
                continue
            try:
                kind, payload = self._conn.recv()
            except EOFError:
                raise self._died() from None
            if kind == "done":
                return
            if kind == "error":
                raise _reraise(*payload)
            batch = Batch.from_wire(payload)
            self._source.recovered_total += batch.recovered_blocks
            yield batch

    def _died(self) -> UnstableChainError:
        """The error for a reader process that ended without saying so."""
        self._proc.join(timeout=5)
        return UnstableChainError(f"the log reader process died (exit code {self._proc.exitcode})")

    def close(self) -> None:
        """Stop the reader process."""
        if self._proc.is_alive():
            self._proc.terminate()
        self._proc.join(timeout=10)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join()
        self._conn.close()


def _read_loop(
    source: ChainSource,
    start: int,
    target: int,
    out: Connection,
    parent_end: Connection,
    parent: int,
    depth: int,
) -> None:  # pragma: no cover - runs in the forked reader process
    """Reader process body: read raw batches and send them until the target or an error."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # Without the parent's copy of the read end here, a write after the parent died fails
    # (EPIPE) instead of waiting for a reader that will never come.
    parent_end.close()
    _die_with(parent)
    _drop_inherited({out.fileno()})
    source.reconnect()
    outbox = _Outbox(out, parent, depth)
    try:
        while start <= target:
            batch = source.read(start, target)
            outbox.put(("batch", batch.to_wire()))
            start = batch.stop + 1
        outbox.put(("done", None))
    except BaseException as exc:
        outbox.put(("error", (type(exc).__name__, str(exc))))
    outbox.drain()
    out.close()


class _Outbox:  # pragma: no cover - runs in the forked reader process
    """Reader process: up to `depth` items ahead, written to the pipe by a sender thread, so
    that reading goes on while the indexer writes; no wait outlasts the indexer."""

    def __init__(self, out: Connection, parent: int, depth: int) -> None:
        self._out = out
        self._parent = parent
        self._items: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
        self._sender = threading.Thread(target=self._send_all, name="reader-send", daemon=True)
        self._sender.start()

    def _gone(self) -> bool:
        """True once nobody will take what is queued (the indexer or the sender ended)."""
        return os.getppid() != self._parent or not self._sender.is_alive()

    def put(self, item: tuple[str, Any]) -> None:
        """Queue an item for the indexer; exit if the indexer is gone."""
        while True:
            try:
                self._items.put(item, timeout=0.5)
                return
            except queue.Full:
                if self._gone():
                    os._exit(0)

    def drain(self) -> None:
        """Wait until the last item is written; exit if the indexer is gone."""
        while self._sender.is_alive():
            self._sender.join(timeout=0.5)
            if os.getppid() != self._parent:
                os._exit(0)

    def _send_all(self) -> None:
        """Sender thread: write items until the last one ("done" or "error")."""
        try:
            while True:
                item = self._items.get()
                self._out.send(item)
                if item[0] != "batch":
                    return
        except OSError:  # EPIPE: the indexer is gone
            os._exit(0)


def _die_with(parent: int) -> None:  # pragma: no cover - runs in the forked reader process
    """End this process when `parent` dies, even by kill -9.

    On Linux the kernel sends SIGKILL (PR_SET_PDEATHSIG, asked for through libc); everywhere a
    watchdog thread notices the re-parenting within half a second. The signal follows the
    thread that forked this process, which is the indexer's thread reading these batches.
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # it died before the request above
        os._exit(0)
    threading.Thread(target=_watch, args=(parent,), name="reader-watchdog", daemon=True).start()


def _watch(parent: int) -> None:  # pragma: no cover - runs in the forked reader process
    """Exit as soon as this process has another parent than `parent`."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def _drop_inherited(keep: set[int]) -> None:  # pragma: no cover - runs in the reader process
    """Let go of every socket and file inherited from the indexer, but stdio and `keep`.

    A fork shares the indexer's descriptors: its lock (indexer/lock.py lets go of it at the
    fork already), its PostgreSQL sessions, its SQLite files and HTTP connections. Each is
    pointed at /dev/null rather than closed (`let_go`).
    """
    for fd in _open_descriptors():
        if fd <= 2 or fd in keep:
            continue
        try:
            mode = os.fstat(fd).st_mode
        except OSError:
            continue  # closed meanwhile (the directory listing's own)
        if stat.S_ISSOCK(mode) or stat.S_ISREG(mode):
            let_go(fd)


def _open_descriptors() -> list[int]:
    """This process's open descriptors (all possible ones where the system does not list them)."""
    for listing in ("/proc/self/fd", "/dev/fd"):
        with contextlib.suppress(OSError):
            return [int(name) for name in os.listdir(listing)]
    return list(range(3, min(os.sysconf("SC_OPEN_MAX"), 65_536)))


def _reraise(kind: str, message: str) -> Exception:
    """Rebuild a reader process's exception on this side."""
    if kind in ("LogQueryError", "RpcError", "RangeTooLargeError"):
        return LogQueryError(message)
    if kind == "UnstableChainError":
        return UnstableChainError(message)
    return IndexerError(f"log reader failed: {kind}: {message}")
