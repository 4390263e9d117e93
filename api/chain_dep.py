"""The chain handle of the app: injected in tests, built from settings otherwise."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from api.metrics import count_transactions
from chain.client import ChainClient


def get_chain(request: Request) -> ChainClient:
    """The app's ChainClient (created on first use from the environment's settings)."""
    client = getattr(request.app.state, "chain", None)
    if client is None:
        client = request.app.state.chain = ChainClient()
        count_transactions(client.w3)
    return client


ChainDep = Annotated[ChainClient, Depends(get_chain)]
