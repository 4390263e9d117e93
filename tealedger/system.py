"""The project's contract system: what `tealedger deploy` puts on a chain, in order."""

from __future__ import annotations

from eth_utils import keccak

from chain.client import ChainClient
from chain.deploy import Deployment
from chain.sender import Sender
from traceability.contracts import deploy_traceability

PAYMENT_TOKEN_NAME = "Digital Yuan (development)"
PAYMENT_TOKEN_SYMBOL = "eCNY"
MERCHANT_CATEGORIES = ("fertilizer", "seedlings", "equipment", "labour service")
# Development accounts (dev mnemonic) and the roles they hold on the lending contracts.
DEV_LENDER, DEV_REGISTRAR = 5, 6
DEV_COOPERATIVE, DEV_PROCESSOR, DEV_DISTRIBUTOR = 1, 2, 3


def role(name: str) -> bytes:
    """An OpenZeppelin role id."""
    return keccak(text=name)


def deploy_system(client: ChainClient) -> list[tuple[Deployment, bool]]:
    """Deploy every contract not yet live with identical code; returns (deployment, created)."""
    admin = client.accounts[0].address
    token = client.deploy("PaymentToken", (PAYMENT_TOKEN_NAME, PAYMENT_TOKEN_SYMBOL, admin))
    # TeaTrace(admin, max yield 30%), ConsentRegistry(TeaTrace); dev accounts 1-4 get the
    # cooperative, processor, distributor and inspector roles (mnemonic accounts only).
    results = [token, *deploy_traceability(client)]
    registry = client.deploy("MerchantRegistry", (admin,))
    factory = client.deploy("LoanFactory", (token[0].address, registry[0].address, admin))
    tea_trace = client.registry.address("TeaTrace")
    args = (token[0].address, factory[0].address, tea_trace, admin)
    settlement = client.deploy("SaleSettlement", args)
    results += [registry, factory, settlement]
    if client.settings.keystore is None:  # development accounts only
        grant_dev_lending_roles(client)
        register_categories(client)
    return results


def _grant(admin: Sender, contract: object, role_name: str, account: str) -> None:
    """Grant a role unless held."""
    rid = role(role_name)
    fns = contract.functions  # type: ignore[attr-defined]
    if not fns.hasRole(rid, account).call():
        admin.transact(fns.grantRole(rid, account))


def grant_dev_lending_roles(client: ChainClient) -> None:
    """Registrar, lender, share committers and distributor roles for the dev accounts."""
    admin = client.sender(0)
    accounts = client.accounts
    _grant(
        admin,
        client.contract("MerchantRegistry"),
        "REGISTRAR_ROLE",
        accounts[DEV_REGISTRAR].address,
    )
    _grant(admin, client.contract("LoanFactory"), "LENDER_ROLE", accounts[DEV_LENDER].address)
    settlement = client.contract("SaleSettlement")
    for index in (DEV_COOPERATIVE, DEV_PROCESSOR):
        _grant(admin, settlement, "SHARE_COMMITTER_ROLE", accounts[index].address)
    _grant(admin, settlement, "DISTRIBUTOR_ROLE", accounts[DEV_DISTRIBUTOR].address)


def register_categories(client: ChainClient) -> None:
    """The merchant categories loans can budget for."""
    registrar = client.sender(DEV_REGISTRAR)
    fns = client.contract("MerchantRegistry").functions
    for name in MERCHANT_CATEGORIES:
        if not fns.isCategory(keccak(text=name)).call():
            registrar.transact(fns.registerCategory(name))
