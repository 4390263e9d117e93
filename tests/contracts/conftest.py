"""Contract tests share one deployment per module; each test runs in an EVM snapshot."""

from tests.traceability.conftest import module_system, system

__all__ = ["module_system", "system"]
