"""The body guard (size, JSON nesting) and per-caller rate limiting (token bucket), as ASGI
middleware."""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass
from typing import Any

from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chain.json_guard import MAX_JSON_DEPTH, too_deep


class BodyGuard:
    """Reads the whole body before the app: 413 over `max_bytes` (declared or streamed,
    chunked included), 422 for JSON nested deeper than `max_depth`, then replays it."""

    def __init__(self, app: ASGIApp, max_bytes: int, max_depth: int = MAX_JSON_DEPTH) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_depth = max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the declared length, read and check the body, then run the app on it."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(scope, send, *self._length_refusal(declared))
            return
        body = await self._read(receive)
        if body is None:
            await self._refuse(scope, send, *self._too_large())
            return
        if _is_json(headers.get(b"content-type", b"")) and too_deep(body, self.max_depth):
            await self._refuse(scope, send, 422, self._too_deep())
            return
        await self.app(scope, _replay(body, receive), send)

    async def _read(self, receive: Receive) -> bytes | None:
        """The body, or None once it passes the limit (the rest is not read)."""
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return b"".join(chunks)
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.max_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _length_refusal(self, declared: bytes) -> tuple[int, Any]:
        """400 for a Content-Length that is not a number, else 413."""
        if not declared.isdigit():
            return 400, {"detail": "the Content-Length header must be a number of bytes"}
        return self._too_large()

    def _too_large(self) -> tuple[int, Any]:
        """The 413 answer."""
        detail = f"the request body is larger than {self.max_bytes} bytes; send less at a time"
        return 413, {"detail": detail}

    def _too_deep(self) -> Any:
        """The 422 answer, shaped like FastAPI's validation errors."""
        msg = f"JSON nested more than {self.max_depth} levels deep is not accepted"
        return {"detail": [{"loc": ["body"], "msg": msg, "type": "json_too_deep"}]}

    async def _refuse(self, scope: Scope, send: Send, code: int, body: Any) -> None:
        """Answer without running the app (the connection closes after it)."""
        response = JSONResponse(body, status_code=code, headers={"Connection": "close"})
        await response(scope, _nothing, send)


def _is_json(content_type: bytes) -> bool:
    """application/json, or any +json media type (the only bodies the app parses as JSON)."""
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or media.endswith(b"+json")


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive() that gives `body` once, then whatever the client sends (a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _nothing() -> Message:
    """receive() for a refusal, which reads nothing."""
    return {"type": "http.disconnect"}


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token bucket per key: `per_minute` requests, refilled continuously."""

    def __init__(self, per_minute: int) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> tuple[bool, float]:
        """(allowed, seconds until the next token)."""
        now = time.monotonic()
        with self._lock:
            bucket = self._buckets.setdefault(key, _Bucket(self.capacity, now))
            bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return True, 0.0
            return False, (1 - bucket.tokens) / self.rate


class RateLimitMiddleware(BaseHTTPMiddleware):
    """429 with Retry-After once a key (or, without one, a client address) runs dry."""

    def __init__(self, app: ASGIApp, limiter: RateLimiter) -> None:
        super().__init__(app)
        self.limiter = limiter

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        """Charge one token to the caller."""
        key = request.headers.get("x-api-key")
        who = hashlib.sha256(key.encode()).hexdigest() if key else _client(request)
        allowed, wait = self.limiter.allow(who)
        if not allowed:
            return JSONResponse(
                {"detail": "rate limit exceeded; retry later"},
                status_code=429,
                headers={"Retry-After": str(max(1, round(wait)))},
            )
        return await call_next(request)


def _client(request: Request) -> str:
    """The client address (anonymous callers share a bucket per address)."""
    return f"ip:{request.client.host if request.client else 'unknown'}"
