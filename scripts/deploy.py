"""brownie script: `brownie run scripts/deploy.py [--network ...]` deploys the payment token.

The full system is deployed by `tealedger deploy` (which keeps a registry per chain); this
script shows the same contracts driven from brownie's console and scripts.
"""

from brownie import PaymentToken, accounts


def main():
    """Deploy PaymentToken from the first development account and mint a float."""
    admin = accounts[0]
    token = PaymentToken.deploy("Digital Yuan (development)", "eCNY", admin, {"from": admin})
    token.mint(admin, 100_000_000, {"from": admin})
    print(f"PaymentToken at {token.address}; admin balance {token.balanceOf(admin)} fen")
    return token
