"""JSON-RPC over keep-alive HTTP: single, raw-reply and batched calls, and their errors.

web3's providers build several objects per call and parse every reply with `json`; the log
reader needs the reply bytes (chain/logs.py parses anvil's layout faster) and batches of
header requests, so it speaks JSON-RPC itself through this client.
"""

from __future__ import annotations

import http.client
import json
import threading
import urllib.parse
from collections.abc import Sequence
from typing import Any

from chain.errors import ChainError

DEFAULT_TIMEOUT = 30.0


class LogQueryError(ChainError):
    """A log or header query failed for a reason other than its size."""


class RangeTooLargeError(LogQueryError):
    """The provider refused a range as too wide or with too many results (or timed out)."""

    def __init__(self, message: str, block_limit: int | None = None) -> None:
        super().__init__(message)
        self.block_limit = block_limit


class RpcError(LogQueryError):
    """The node answered a JSON-RPC call with an error object."""

    def __init__(self, method: str, code: int | None, message: str, data: Any = None) -> None:
        super().__init__(f"{method} failed: {message} (code {code})")
        self.method = method
        self.code = code
        self.rpc_message = message
        self.data = data  # revert data, where the node sends it (chain.revert reads `.data`)


class JsonRpc:
    """Minimal JSON-RPC over one keep-alive HTTP connection per thread."""

    def __init__(self, url: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise LogQueryError(f"raw log reading needs an http(s) JSON-RPC URL, got {url!r}")
        self.url = url
        self.timeout = timeout
        self._https = parts.scheme == "https"
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._local = threading.local()
        self._ids = iter(range(1, 2**62))

    def _connection(self) -> http.client.HTTPConnection:
        """This thread's connection (created on first use)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            conn = cls(self._host, self._port, timeout=self.timeout)
            self._local.conn = conn
        return conn

    def close(self) -> None:
        """Close this thread's connection."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def post(self, payload: Any) -> Any:
        """POST one JSON body and return the parsed reply; one reconnect on a stale socket."""
        return json.loads(self.post_raw(payload))

    def post_raw(self, payload: Any, *, resend: bool = True) -> bytes:
        """POST one JSON body and return the reply's bytes unparsed; a lost connection is
        tried once more unless `resend` is False (the caller decides, as for a transaction)."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json"}
        for attempt in (0, 1) if resend else (1,):
            conn = self._connection()
            try:
                conn.request("POST", self._path, body, headers)
                resp = conn.getresponse()
                raw = resp.read()
            except TimeoutError as exc:
                self.close()
                raise RangeTooLargeError(f"request to {self.url} timed out: {exc}") from None
            except (http.client.HTTPException, ConnectionError, OSError) as exc:
                self.close()
                if attempt:
                    raise LogQueryError(f"JSON-RPC node at {self.url} unreachable: {exc}") from None
                continue
            if resp.status in (408, 413, 504):
                raise RangeTooLargeError(f"HTTP {resp.status} from {self.url}")
            if resp.status >= 400 and not raw.startswith((b"{", b"[")):
                raise LogQueryError(f"HTTP {resp.status} from {self.url}: {raw[:200]!r}")
            return raw
        raise AssertionError("unreachable")  # pragma: no cover

    def call(self, method: str, params: list[Any], *, resend: bool = True) -> Any:
        """One call; an error reply raises RpcError (`resend` as for post_raw)."""
        raw = self.post_raw(self.request(method, params), resend=resend)
        return self.result(method, json.loads(raw))

    def call_raw(self, method: str, params: list[Any]) -> bytes:
        """One call, the reply's bytes unparsed (for parsers faster than `json`)."""
        return self.post_raw(self.request(method, params))

    def request(self, method: str, params: list[Any]) -> dict[str, Any]:
        """A JSON-RPC request object with the next id."""
        return {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}

    @staticmethod
    def result(method: str, reply: Any) -> Any:
        """The result of a parsed reply; an error reply raises RpcError."""
        if "error" in reply:
            err = reply["error"]
            message = str(err.get("message", err))
            raise RpcError(method, err.get("code"), message, err.get("data"))
        return reply["result"]

    def batch(self, method: str, params: Sequence[list[Any]]) -> list[Any]:
        """Many calls of one method in one request, results in order; any error raises."""
        return [self.result(method, reply) for reply in self.batch_replies(method, params)]

    def batch_replies(self, method: str, params: Sequence[list[Any]]) -> list[dict[str, Any]]:
        """Many calls of one method in one request: each one's reply object (a result or an
        error), in order."""
        if not params:
            return []
        first = next(self._ids)
        calls = [
            {"jsonrpc": "2.0", "id": first + i, "method": method, "params": p}
            for i, p in enumerate(params)
        ]
        self._ids = iter(range(first + len(calls), 2**62))
        replies = self.post(calls)
        if isinstance(replies, dict):  # a batch-level error
            err = replies.get("error", {})
            raise RpcError(method, err.get("code"), str(err.get("message", replies)))
        by_id = {r.get("id"): r for r in replies}
        missing = {"error": {"message": "no reply in batch"}}
        return [by_id.get(call["id"], missing) for call in calls]
