"""tealedger: supply-chain lending for tea cooperatives on an Ethereum ledger."""

__version__ = "0.1.0"
