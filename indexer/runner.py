"""Assemble an indexer from a ChainClient and a database URL (used by the CLI, tests, bench)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from chain.client import ChainClient
from chain.compiler import Artifacts
from chain.logs import AdaptiveRange
from indexer.db import make_engine
from indexer.engine import Indexer, IndexerConfig, Progress
from indexer.errors import NothingToIndexError
from indexer.source import ChainSource, ContractInfo


def registry_contracts(client: ChainClient) -> list[ContractInfo]:
    """Every live deployment of the connected chain, as contracts to follow."""
    return [
        ContractInfo(bytes.fromhex(d.address[2:]), name, d.contract, d.block_number)
        for name, d in sorted(client.registry.all().items())
    ]


def project_abis(artifacts: Artifacts) -> dict[str, list[dict[str, Any]]]:
    """ABI of every compiled contract by name (compiled offline from contracts/)."""
    return {name: art.abi for name, art in artifacts.by_name.items()}


def chain_source(
    client: ChainClient,
    max_span: int = 10_000,
    bloom_check: bool = True,
    contracts: list[ContractInfo] | None = None,
) -> ChainSource:
    """A ChainSource over the client's node and registry."""
    contracts = registry_contracts(client) if contracts is None else contracts
    if not contracts:
        raise NothingToIndexError(
            f"no project contract is deployed on chain {client.w3.eth.chain_id}: run "
            "`tealedger deploy` first"
        )
    # Start at one block: the span doubles per quiet reply (a dozen small reads to reach 10,000
    # blocks), while a first 100-block read of a busy chain could return a million logs in one
    # batch (one huge transaction, nothing read while it is written).
    adaptive = AdaptiveRange(span=1, max_span=max_span)
    return ChainSource(
        client.node.url, contracts, project_abis(client.artifacts), adaptive, bloom_check
    )


def make_indexer(
    client: ChainClient,
    database: str | Engine,
    config: IndexerConfig | None = None,
    max_span: int = 10_000,
    on_progress: Any = None,
) -> Indexer:
    """An Indexer over the client's chain into `database` (URL or engine); not yet locked."""
    engine = make_engine(database, writer=True) if isinstance(database, str) else database
    return Indexer(engine, chain_source(client, max_span), config, on_progress)


def index_once(client: ChainClient, database: str | Engine, **options: Any) -> Progress:
    """Catch up once (no lock taken: for tests and scripts that own the database)."""
    indexer = make_indexer(client, database, **options)
    indexer.prepare()
    return indexer.sync()
