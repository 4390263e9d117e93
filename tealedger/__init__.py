"""tealedger: supply-chain lending for tea cooperatives on an Ethereum ledger."""

from importlib.metadata import version

__version__ = version("tealedger")
