"""The FastAPI application: settings, database, middleware, routers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version

from fastapi import APIRouter, Depends, FastAPI
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.admin import routes as admin_routes
from api.cooperatives import pages as cooperative_pages
from api.cooperatives import routes as cooperative_routes
from api.core import errors, sessions
from api.core.db import service_engine
from api.core.deps import serve_client
from api.core.follower import Follower
from api.core.limits import BodyGuard, RateLimitMiddleware, make_limiter
from api.core.metrics import HTTP_REQUESTS, count_alerts
from api.core.query import reject_unknown_query
from api.core.settings import ApiSettings, get_settings
from api.epcis import capture as epcis_capture
from api.epcis import routes as epcis_routes
from api.farmers import pages as farmer_pages
from api.farmers import routes as farmer_routes
from api.lenders import pages as lender_pages
from api.lenders import routes as lender_routes
from api.merchants import pages as merchant_pages
from api.merchants import routes as merchant_routes
from api.ops import routes as ops_routes
from api.public import pages as public_pages
from api.public import resolver as public_resolver
from api.public import routes as public_routes
from api.regulator import pages as regulator_pages
from api.regulator import routes as regulator_routes
from api.supply_chain import pages as supply_chain_pages
from api.supply_chain import routes as supply_chain_routes
from chain.client import ChainClient
from indexer.db import migrate

# Every audience's JSON routes, then its pages (api/<audience>/routes.py, pages.py).
ROUTERS: tuple[APIRouter, ...] = (
    ops_routes.router,
    admin_routes.router,
    public_routes.router,
    epcis_routes.router,
    epcis_capture.router,
    cooperative_routes.router,
    supply_chain_routes.router,
    farmer_routes.router,
    lender_routes.router,
    merchant_routes.router,
    regulator_routes.router,
    sessions.router,
    public_pages.router,
    public_resolver.router,
    cooperative_pages.router,
    lender_pages.router,
    merchant_pages.router,
    supply_chain_pages.router,
    farmer_pages.router,
    regulator_pages.router,
)
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
        title="tealedger",
        version=version("tealedger"),
        description=DESCRIPTION,
        lifespan=_lifespan,
        responses=errors.RESPONSES,
        dependencies=[Depends(reject_unknown_query)],
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.chain = chain
    app.state.follower = follower
    if chain is not None:
        serve_client(chain, engine)
    count_alerts(engine)
    errors.install(app)
    # The last added runs first: a caller out of tokens is refused before its body is read.
    app.add_middleware(BodyGuard, max_bytes=settings.max_body_bytes)
    limiter = make_limiter(engine, settings.rate_limit_per_minute)
    app.add_middleware(RateLimitMiddleware, limiter=limiter)
    app.add_middleware(CountRequests)
    for router in ROUTERS:
        app.include_router(router)
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


class CountRequests:
    """Count responses by method and status (plain ASGI: a BaseHTTPMiddleware costs a task and
    a stream per request, about a millisecond of a profile read)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app, counting the status it answers with."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def counted(message: Message) -> None:
            if message["type"] == "http.response.start":
                HTTP_REQUESTS.labels(scope["method"], str(message["status"])).inc()
            await send(message)

        await self.app(scope, receive, counted)
