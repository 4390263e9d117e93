"""Settings: environment over the settings file over defaults."""

import pytest

from chain.config import ChainSettings
from chain.errors import ConfigError


def test_defaults(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    for key in ("TEALEDGER_BACKEND", "TEALEDGER_PORT", "TEALEDGER_CONFIG"):
        monkeypatch.delenv(key, raising=False)
    settings = ChainSettings()
    assert (settings.backend, settings.port, settings.host) == ("ganache", 8545, "127.0.0.1")


def test_settings_file_then_environment(monkeypatch, tmp_path):
    config = tmp_path / "site.toml"
    config.write_text('[chain]\nbackend = "anvil"\nport = 9545\n')
    monkeypatch.setenv("TEALEDGER_CONFIG", str(config))
    monkeypatch.delenv("TEALEDGER_BACKEND", raising=False)
    monkeypatch.delenv("TEALEDGER_PORT", raising=False)
    assert (ChainSettings().backend, ChainSettings().port) == ("anvil", 9545)
    monkeypatch.setenv("TEALEDGER_PORT", "7545")
    assert ChainSettings().port == 7545, "the environment wins over the file"


def test_rpc_backend_needs_a_url(monkeypatch):
    monkeypatch.delenv("TEALEDGER_RPC_URL", raising=False)
    with pytest.raises(ConfigError, match="TEALEDGER_RPC_URL"):
        _ = ChainSettings(backend="rpc").node_url
    assert ChainSettings(backend="rpc", rpc_url="http://10.0.0.5:8545").node_url.endswith(":8545")
