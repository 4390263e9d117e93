"""The FastAPI application: settings, database, middleware, routers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool
from starlette.middleware.base import RequestResponseEndpoint

from api.admin import routes as admin
from api.cooperatives import pages as coop_pages
from api.cooperatives import routes as cooperatives
from api.core import errors
from api.core.db import service_engine
from api.core.follower import Follower
from api.core.limits import BodySizeLimit, RateLimiter, RateLimitMiddleware
from api.core.metrics import HTTP_REQUESTS, count_transactions
from api.core.settings import ApiSettings, get_settings
from api.farmers import routes as farmers
from api.lenders import pages as lender_pages
from api.lenders import routes as lenders
from api.merchants import pages as merchant_pages
from api.merchants import routes as merchants
from api.ops import routes as health
from api.public import pages
from api.public import routes as public
from chain.client import ChainClient
from indexer.db import migrate
from tealedger import __version__

DESCRIPTION = """
Supply-chain lending for tea cooperatives. Every organisation calls with its `X-API-Key`.
Writes go to the chain and return the transaction hash; reads come from the indexed
database and say which block they reflect.
"""


def create_app(
    settings: ApiSettings | None = None,
    engine: Engine | None = None,
    chain: ChainClient | None = None,
    follower: Follower | None = None,
) -> FastAPI:
    """Build the app (the database is migrated to the newest schema; the chain client is made
    on first use; a `follower` indexes the chain while the app runs)."""
    settings = settings or get_settings()
    engine = engine or service_engine(settings.database_url)
    migrate(engine)
    app = FastAPI(
        title="tealedger", version=__version__, description=DESCRIPTION, lifespan=_lifespan
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.chain = chain
    app.state.follower = follower
    if chain is not None:
        count_transactions(chain.w3)
    errors.install(app)
    app.add_middleware(RateLimitMiddleware, limiter=RateLimiter(settings.rate_limit_per_minute))
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.middleware("http")(_count_requests)
    app.include_router(health.router)
    app.include_router(admin.router)
    app.include_router(public.router)
    app.include_router(cooperatives.router)
    app.include_router(farmers.router)
    app.include_router(lenders.router)
    app.include_router(merchants.router)
    app.include_router(pages.router)
    app.include_router(coop_pages.router)
    app.include_router(lender_pages.router)
    app.include_router(merchant_pages.router)
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Run the indexer follower, if any, for as long as the app serves."""
    follower: Follower | None = app.state.follower
    if follower is not None:
        follower.start()
    try:
        yield
    finally:
        if follower is not None:
            await run_in_threadpool(follower.stop)


async def _count_requests(request: Request, call_next: RequestResponseEndpoint) -> Response:
    """Count responses by method and status."""
    response = await call_next(request)
    HTTP_REQUESTS.labels(request.method, str(response.status_code)).inc()
    return response
