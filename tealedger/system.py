"""The project's contract system: what `tealedger deploy` puts on a chain, in order."""

from __future__ import annotations

from chain.client import ChainClient
from chain.deploy import Deployment
from lending.loans.contracts import deploy_lending, deploy_payment_token
from traceability.contracts import TEA_TRACE, deploy_traceability


def deploy_system(client: ChainClient) -> list[tuple[Deployment, bool]]:
    """Deploy every contract not yet live with identical code; returns (deployment, created)."""
    # The token first, then TeaTrace(admin, max yield 30%) and ConsentRegistry(TeaTrace) with
    # dev accounts 1-4 given the cooperative, processor, distributor and inspector roles
    # (mnemonic accounts only), then the lending contracts, SaleSettlement over TeaTrace.
    token = deploy_payment_token(client)
    results = [token, *deploy_traceability(client)]
    tea_trace = client.registry.address(TEA_TRACE)
    return [*results, *deploy_lending(client, token[0].address, tea_trace)]
