"""The body guard (size, JSON nesting) and per-caller rate limiting (token bucket), as ASGI
middleware."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.core.models import ApiKey, Organisation
from api.core.security import hash_key
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


# How many callers each table remembers; the least recently seen is forgotten first, so no
# stream of new keys or addresses grows memory without bound.
MAX_CALLERS = 10_000
# How long a key found valid is trusted for choosing its bucket (revocation is checked by the
# route itself on every request; this only decides whose tokens a request spends).
KEY_TTL_SECONDS = 30.0


class RateLimiter:
    """Token bucket per caller: `per_minute` requests, refilled continuously; at most
    `max_callers` buckets (least recently used forgotten first)."""

    def __init__(self, per_minute: int, max_callers: int = MAX_CALLERS) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.max_callers = max_callers
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._buckets)

    def allow(self, key: str) -> tuple[bool, float]:
        """(allowed, seconds until the next token)."""
        now = time.monotonic()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket(self.capacity, now)
                while len(self._buckets) > self.max_callers:
                    self._buckets.popitem(last=False)
            else:
                self._buckets.move_to_end(key)
            bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return True, 0.0
            return False, (1 - bucket.tokens) / self.rate


SWEEP_EVERY = 1024
"""A shared limiter forgets full buckets after this many charges (per process)."""

# One statement charges a caller: the bucket is refilled for the time since its last charge
# (by the database's clock), then one token is taken if there is one. The row lock of the
# upsert serialises concurrent charges of one caller across every process.
_REFILL = "LEAST(:capacity, b.tokens + GREATEST(0, EXCLUDED.updated_at - b.updated_at) * :rate)"
_CHARGE = text(f"""
INSERT INTO api_rate_bucket AS b (caller, tokens, updated_at, allowed)
VALUES (:caller, :capacity - 1, EXTRACT(EPOCH FROM clock_timestamp())::float8, true)
ON CONFLICT (caller) DO UPDATE SET
    tokens = {_REFILL} - CASE WHEN {_REFILL} >= 1 THEN 1 ELSE 0 END,
    allowed = {_REFILL} >= 1,
    updated_at = EXCLUDED.updated_at
RETURNING allowed, tokens
""")
_NO_FSYNC = text("SET LOCAL synchronous_commit TO OFF")
_SWEEP = text(
    "DELETE FROM api_rate_bucket "
    "WHERE updated_at < EXTRACT(EPOCH FROM clock_timestamp())::float8 - :full_after"
)


class SharedRateLimiter:
    """The token bucket of `RateLimiter`, kept in PostgreSQL's `api_rate_bucket`, so every
    `tealedger serve` on the database charges the same buckets: two processes do not give a
    caller twice the limit. Buckets that would be full again are swept now and then."""

    def __init__(self, engine: Engine, per_minute: int, sweep_every: int = SWEEP_EVERY) -> None:
        if engine.dialect.name != "postgresql":
            raise ValueError(
                "a shared rate limiter needs PostgreSQL; SQLite keeps buckets in memory"
            )
        self.engine = engine
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.sweep_every = sweep_every
        self._charges = 0
        self._lock = threading.Lock()

    def allow(self, key: str) -> tuple[bool, float]:
        """(allowed, seconds until the next token)."""
        params = {"caller": key[:80], "capacity": self.capacity, "rate": self.rate}
        with self.engine.begin() as conn:
            # A bucket is not worth an fsync: a crash forgets at most the last few charges, and
            # waiting for the WAL flush cost every request milliseconds (docs/benchmarks.md).
            conn.execute(_NO_FSYNC)
            allowed, tokens = conn.execute(_CHARGE, params).one()
            if self._sweep_due():
                conn.execute(_SWEEP, {"full_after": self.capacity / self.rate + 1})
        return bool(allowed), 0.0 if allowed else (1 - tokens) / self.rate

    def _sweep_due(self) -> bool:
        """Every `sweep_every`-th charge of this process."""
        with self._lock:
            self._charges += 1
            return self._charges % self.sweep_every == 0


Limiter = RateLimiter | SharedRateLimiter


def make_limiter(engine: Engine, per_minute: int) -> Limiter:
    """The shared limiter on PostgreSQL (several processes may serve it), else in memory."""
    if engine.dialect.name == "postgresql":
        return SharedRateLimiter(engine, per_minute)
    return RateLimiter(per_minute)


class ValidKeys:
    """Which API key digests belong to an active key, remembered for a short while (bounded)."""

    def __init__(self, ttl: float = KEY_TTL_SECONDS, max_keys: int = MAX_CALLERS) -> None:
        self.ttl = ttl
        self.max_keys = max_keys
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._seen)

    def remembered(self, digest: str) -> bool:
        """Whether `digest` was found valid less than `ttl` ago (no database read)."""
        now = time.monotonic()
        with self._lock:
            until = self._seen.get(digest)
            if until is not None and until > now:
                self._seen.move_to_end(digest)
                return True
        return False

    def valid(self, engine: Engine, digest: str) -> bool:
        """Whether `digest` is an unrevoked key of an active organisation."""
        if self.remembered(digest):
            return True
        now = time.monotonic()
        with Session(engine) as session:
            found = key_is_active(session, digest)
        with self._lock:
            if found:
                self._seen[digest] = now + self.ttl
                self._seen.move_to_end(digest)
                while len(self._seen) > self.max_keys:
                    self._seen.popitem(last=False)
            else:
                self._seen.pop(digest, None)
        return found


def key_is_active(session: Session, digest: str) -> bool:
    """Whether a key digest (`hash_key`) is an unrevoked key of an active organisation."""
    key = session.exec(select(ApiKey).where(ApiKey.key_hash == digest)).first()
    if key is None or key.revoked_at is not None:
        return False
    org = session.get(Organisation, key.organisation_id)
    return org is not None and org.active


class RateLimitMiddleware:
    """429 with Retry-After once a caller runs dry. A valid API key is the caller; a request
    without one, or with a key that is not valid, spends its client address's tokens, so
    random keys do not get fresh buckets. Plain ASGI: a BaseHTTPMiddleware costs a task and a
    stream per request."""

    def __init__(self, app: ASGIApp, limiter: Limiter, keys: ValidKeys | None = None) -> None:
        self.app = app
        self.limiter = limiter
        self.keys = keys or ValidKeys()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Charge one token to the caller, then run the app (or answer 429)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        caller = await self._caller(request)
        if isinstance(self.limiter, SharedRateLimiter):
            allowed, wait = await run_in_threadpool(self.limiter.allow, caller)
        else:
            allowed, wait = self.limiter.allow(caller)
        if not allowed:
            response = JSONResponse(
                {"detail": "too many requests; wait a little and try again"},
                status_code=429,
                headers={"Retry-After": str(max(1, round(wait)))},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _caller(self, request: Request) -> str:
        """`key:<digest>` for a valid key, else `ip:<address>`."""
        key = request.headers.get("x-api-key")
        if key:
            digest = hash_key(key)
            engine = request.app.state.engine
            # A key seen lately is answered here: a worker-thread hop only to read the database.
            if self.keys.remembered(digest) or await run_in_threadpool(
                self.keys.valid, engine, digest
            ):
                return f"key:{digest}"
        return _client(request)


def _client(request: Request) -> str:
    """The client address (anonymous callers share a bucket per address)."""
    return f"ip:{request.client.host if request.client else 'unknown'}"
