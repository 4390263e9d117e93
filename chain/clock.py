"""The chain's clock: deadlines come from the latest block, never the server's clock."""

from web3 import Web3


def chain_now(w3: Web3) -> int:
    """Return the latest block's timestamp in seconds."""
    return int(w3.eth.get_block("latest")["timestamp"])
