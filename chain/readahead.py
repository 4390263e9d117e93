"""Read-ahead of eth_getLogs: the next range's request runs in a background thread.

The node serialises the next range's logs while the caller parses and writes this range's
(the thread mostly waits on its socket, which releases the GIL); the reply is kept as bytes
and parsed by whoever takes it.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from typing import Any

from chain.rpc import JsonRpc


class Ahead:
    """An eth_getLogs request (sent ahead by a background thread, or inline): reply bytes."""

    def __init__(self, rpc: JsonRpc, params: dict[str, Any]) -> None:
        self.rpc = rpc
        self.params = params
        self.pid = os.getpid()
        self.body = b""
        self.error: BaseException | None = None
        self.seconds = 0.0
        self._done = threading.Event()

    def run(self) -> None:
        """Send the request (in the background thread, or inline when nothing was ahead)."""
        began = time.perf_counter()
        try:
            self.body = self.rpc.call_raw("eth_getLogs", [self.params])
        except BaseException as exc:  # raised by result(), in the thread that takes the reply
            self.error = exc
        self.seconds = time.perf_counter() - began
        self._done.set()

    def result(self) -> tuple[bytes, float]:
        """The reply and how long the node took; the request's error is raised here."""
        self._done.wait()
        if self.error is not None:
            raise self.error
        return self.body, self.seconds


class AheadThread:
    """One daemon thread sending read-ahead requests in order; it exits when idle."""

    IDLE_SECONDS = 2.0

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        """Fresh state (also in a forked child, which has none of the parent's threads)."""
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._jobs: queue.SimpleQueue[Ahead] = queue.SimpleQueue()
        self._running = False

    def submit(self, job: Ahead) -> Ahead:
        """Queue a request; start the thread if none runs."""
        if self._pid != os.getpid():
            self._reset()
        with self._lock:
            self._jobs.put(job)
            if not self._running:
                self._running = True
                threading.Thread(target=self._loop, name="log-read-ahead", daemon=True).start()
        return job

    def _loop(self) -> None:
        """Run requests until none comes for IDLE_SECONDS."""
        while True:
            try:
                job = self._jobs.get(timeout=self.IDLE_SECONDS)
            except queue.Empty:
                with self._lock:
                    if self._jobs.empty():
                        self._running = False
                        return
                continue
            job.run()
