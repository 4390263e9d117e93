"""Chain settings: environment (`TEALEDGER_*`), an optional `tealedger.toml`, then defaults."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from chain.errors import ConfigError

Backend = Literal["embedded", "ganache", "anvil", "rpc"]

# The well-known development mnemonic (anvil's and hardhat's): never for real funds.
DEV_MNEMONIC = "test test test test test test test test test test test junk"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _config_file() -> Path:
    """Settings file: $TEALEDGER_CONFIG or tealedger.toml in the working directory."""
    return Path(os.environ.get("TEALEDGER_CONFIG", "tealedger.toml"))


BLOCK_GAS_LIMIT = 30_000_000
"""Gas limit of a ganache started here (a real network's size) unless ChainSettings says more."""

MAX_BLOCK_GAS_LIMIT = 2_000_000_000
"""The largest block gas limit a node started here may be given."""

ANVIL_BLOCK_GAS_LIMIT = MAX_BLOCK_GAS_LIMIT
"""Gas limit of an anvil started here unless ChainSettings says otherwise. anvil recomputes the
state root over all the chain's storage for every block it mines (1.2 µs a slot, `python -m
bench blocks`), so the same transactions cost it less in fewer, bigger blocks: the 3,000-farmer
demo went from 4:58 in 906 blocks of 30 M gas to 3:20 in 208 (docs/demo.md)."""


MIN_HISTORY_BLOCKS = 16
"""The fewest blocks of history a pruned anvil may keep: a pipeline's receipts and a request's
reads of the blocks it just mined must still find them."""


MIN_NODE_STATES = 4
"""The fewest block states a pruned anvil may keep: a failed transaction's revert is replayed
at the block before it as its pipeline settles."""


class ChainSettings(BaseSettings):
    """Where the chain is, how to reach it and who signs."""

    model_config = SettingsConfigDict(env_prefix="TEALEDGER_", extra="ignore")

    project_root: Path = PROJECT_ROOT
    data_dir: Path = Field(default_factory=lambda: PROJECT_ROOT / ".tealedger")
    cache_dir: Path = Field(default_factory=lambda: PROJECT_ROOT / ".tealedger" / "cache")
    backend: Backend = "ganache"
    host: str = "127.0.0.1"
    port: int = Field(default=8545, ge=1, le=65535)
    rpc_url: str | None = None
    mnemonic: SecretStr = SecretStr(DEV_MNEMONIC)
    accounts: int = Field(default=10, ge=1, le=1000)
    keystore: Path | None = None
    keystore_password: SecretStr | None = None
    node_start_timeout: float = 60.0
    # Gas limit of the blocks a local node started here mines (TEALEDGER_BLOCK_GAS_LIMIT); None
    # is the node's own default (ANVIL_BLOCK_GAS_LIMIT, BLOCK_GAS_LIMIT for ganache). Bigger
    # blocks take bigger harvest batches and fewer blocks (each costs the node work of its own:
    # docs/benchmarks.md, "Harvest write rate"); a real network sets its own.
    block_gas_limit: int | None = Field(default=None, ge=BLOCK_GAS_LIMIT, le=MAX_BLOCK_GAS_LIMIT)
    # Blocks whose transactions, receipts and logs an anvil started here keeps in memory
    # (TEALEDGER_HISTORY_BLOCKS; None keeps all). Older logs are read from the index
    # (indexer/archive.py), so the service's follower must stay within this many blocks of the
    # head: it stops with HistoryPrunedError rather than index a pruned block as empty.
    history_blocks: int | None = Field(default=None, ge=MIN_HISTORY_BLOCKS)
    # Block states an anvil started here keeps in memory (TEALEDGER_NODE_STATES; None is
    # chain.nodes.PRUNED_STATES): each is a copy of the whole storage, about 47 MB at 12,000
    # farmers, so a region of Enshi's size needs fewer.
    node_states: int | None = Field(default=None, ge=MIN_NODE_STATES)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Init args win, then environment, then the TOML file's [chain] table."""
        toml = TomlConfigSettingsSource(settings_cls, toml_file=_config_file())
        return (init_settings, env_settings, _ChainTable(settings_cls, toml))

    @property
    def node_url(self) -> str:
        """JSON-RPC URL of the configured node."""
        if self.backend == "rpc":
            if not self.rpc_url:
                raise ConfigError(
                    "backend 'rpc' needs an RPC URL: set TEALEDGER_RPC_URL or pass --rpc-url"
                )
            return self.rpc_url
        return f"http://{self.host}:{self.port}"


class _ChainTable(PydanticBaseSettingsSource):
    """Reads the `[chain]` table of the settings file."""

    def __init__(self, settings_cls: type[BaseSettings], toml: TomlConfigSettingsSource) -> None:
        super().__init__(settings_cls)
        self._values = dict(toml().get("chain", {}))

    def get_field_value(self, field: object, field_name: str) -> tuple[object, str, bool]:
        """Unused: values come whole from __call__."""
        return self._values.get(field_name), field_name, False

    def __call__(self) -> dict[str, object]:
        """Return the table's values."""
        return self._values
