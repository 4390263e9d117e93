"""Service settings: one pydantic class; default secrets are refused outside development."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from chain.config import PROJECT_ROOT

DEV_KEYSTORE_PASSWORD = "tealedger-development-only"
DEV_PSEUDONYM_SECRET = "tealedger-development-pseudonyms-only"


class ApiSettings(BaseSettings):
    """How the HTTP service runs."""

    model_config = SettingsConfigDict(env_prefix="TEALEDGER_", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = Field(
        default="",
        validation_alias=AliasChoices("DATABASE_URL", "TEALEDGER_DATABASE_URL"),
        description="SQLAlchemy URL; empty means tealedger.db in the data dir (the indexer's)",
    )
    data_dir: Path = Field(default_factory=lambda: PROJECT_ROOT / ".tealedger")
    org_keystore_password: SecretStr = SecretStr(DEV_KEYSTORE_PASSWORD)
    # Keys each cooperative's farmer/plot pseudonyms (api/coop_identity.py): never change it
    # once farmers are registered, or the same person would get a new pseudonym.
    pseudonym_secret: SecretStr = SecretStr(DEV_PSEUDONYM_SECRET)
    rate_limit_per_minute: int = Field(default=600, ge=1)
    max_body_bytes: int = Field(default=2_000_000, ge=1024)
    # Empty: links follow the address each request came to (api/core/links.py).
    public_base_url: str = ""
    # Bearer token for GET /metrics; unset, only loopback clients that no proxy forwarded may
    # scrape (api/ops/routes.py).
    metrics_key: SecretStr | None = None
    # The risk monitor's rules run after the follower indexes new blocks, at most this often
    # (api/regulator/watch.py); 0 leaves scans to `tealedger risk scan` and the regulator's page.
    risk_scan_seconds: int = Field(default=60, ge=0, le=86_400)

    @model_validator(mode="after")
    def _database_in_data_dir(self) -> ApiSettings:
        """Default to the indexer's database file, so reads see what it indexed."""
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'tealedger.db'}"
        return self

    @model_validator(mode="after")
    def _no_default_secrets_in_production(self) -> ApiSettings:
        """A production service must bring its own keystore password and pseudonym secret."""
        default = self.org_keystore_password.get_secret_value() == DEV_KEYSTORE_PASSWORD
        if self.environment == "production" and default:
            raise ValueError(
                "TEALEDGER_ORG_KEYSTORE_PASSWORD must be set in production "
                "(the development default is refused)"
            )
        pseudonyms = self.pseudonym_secret.get_secret_value()
        if self.environment == "production" and (
            pseudonyms == DEV_PSEUDONYM_SECRET or len(pseudonyms) < 32
        ):
            raise ValueError(
                "TEALEDGER_PSEUDONYM_SECRET must be set in production to at least 32 random "
                "characters (the development default is refused)"
            )
        return self

    @property
    def keystore_dir(self) -> Path:
        """Where organisations' encrypted signing keys live."""
        return self.data_dir / "keystores"


@lru_cache
def get_settings() -> ApiSettings:
    """Settings read once per process."""
    return ApiSettings()
