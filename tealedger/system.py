"""The project's contract system: what `tealedger deploy` puts on a chain, in order."""

from __future__ import annotations

from chain.client import ChainClient
from chain.deploy import Deployment
from traceability.contracts import deploy_traceability

PAYMENT_TOKEN_NAME = "Digital Yuan (development)"
PAYMENT_TOKEN_SYMBOL = "eCNY"


def deploy_system(client: ChainClient) -> list[tuple[Deployment, bool]]:
    """Deploy every contract not yet live with identical code; returns (deployment, created)."""
    admin = client.accounts[0].address
    results = [client.deploy("PaymentToken", (PAYMENT_TOKEN_NAME, PAYMENT_TOKEN_SYMBOL, admin))]
    # TeaTrace(admin, max yield 30%), ConsentRegistry(TeaTrace); dev accounts 1-4 get the
    # cooperative, processor, distributor and inspector roles (mnemonic accounts only).
    results += deploy_traceability(client)
    return results
