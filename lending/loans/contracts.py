"""The lending contracts: their names, role ids and development accounts, and their deployment.

PaymentToken (the eCNY stand-in), MerchantRegistry, LoanFactory (which clones a LoanEscrow per
loan and reads farmer wallets from TeaTrace) and SaleSettlement (which needs TeaTrace's address)
are deployed after traceability's contracts by tealedger.system.deploy_system. On development
chains (mnemonic accounts) the dev accounts get their lending roles and the merchant categories
are registered.
"""

from __future__ import annotations

from eth_utils import keccak

from chain.client import ChainClient
from chain.deploy import Deployment
from chain.roles import grant_role_once

PAYMENT_TOKEN = "PaymentToken"
MERCHANT_REGISTRY = "MerchantRegistry"
LOAN_FACTORY = "LoanFactory"
LOAN_ESCROW = "LoanEscrow"
SALE_SETTLEMENT = "SaleSettlement"

# OpenZeppelin role ids: keccak256 of the role's name.
REGISTRAR_ROLE = keccak(text="REGISTRAR_ROLE")
"""MerchantRegistry: registers categories and approves merchants."""
LENDER_ROLE = keccak(text="LENDER_ROLE")
"""LoanFactory: issues loans."""
SHARE_COMMITTER_ROLE = keccak(text="SHARE_COMMITTER_ROLE")
"""SaleSettlement: commits the farmer shares of a lot (cooperatives and processors)."""
DISTRIBUTOR_ROLE = keccak(text="DISTRIBUTOR_ROLE")
"""SaleSettlement: settles sales of a lot."""

PAYMENT_TOKEN_NAME = "Digital Yuan (development)"
PAYMENT_TOKEN_SYMBOL = "eCNY"
MERCHANT_CATEGORIES = ("fertilizer", "seedlings", "equipment", "labour service")

# Development accounts (dev mnemonic) and the roles they hold on the lending contracts.
DEV_LENDER, DEV_REGISTRAR = 5, 6
DEV_COOPERATIVE, DEV_PROCESSOR, DEV_DISTRIBUTOR = 1, 2, 3


def deploy_payment_token(client: ChainClient) -> tuple[Deployment, bool]:
    """Deploy the payment token unless live (the admin, account 0, may mint)."""
    admin = client.accounts[0].address
    return client.deploy(PAYMENT_TOKEN, (PAYMENT_TOKEN_NAME, PAYMENT_TOKEN_SYMBOL, admin))


def deploy_lending(
    client: ChainClient, token: str, tea_trace: str
) -> list[tuple[Deployment, bool]]:
    """Deploy MerchantRegistry, LoanFactory and SaleSettlement unless live, over the payment
    token and TeaTrace at the given addresses; on development chains, set up the dev accounts."""
    admin = client.accounts[0].address
    registry = client.deploy(MERCHANT_REGISTRY, (admin,))
    factory = client.deploy(LOAN_FACTORY, (token, registry[0].address, tea_trace, admin))
    settlement = client.deploy(SALE_SETTLEMENT, (token, factory[0].address, tea_trace, admin))
    if client.settings.keystore is None:  # development accounts only
        grant_dev_lending_roles(client)
        register_categories(client)
    return [registry, factory, settlement]


def grant_dev_lending_roles(client: ChainClient) -> None:
    """Registrar, lender, share committers and distributor roles for the dev accounts."""
    admin = client.sender(0)
    accounts = client.accounts
    registry = client.contract(MERCHANT_REGISTRY)
    grant_role_once(admin, registry, REGISTRAR_ROLE, accounts[DEV_REGISTRAR].address)
    grant_role_once(admin, client.contract(LOAN_FACTORY), LENDER_ROLE, accounts[DEV_LENDER].address)
    settlement = client.contract(SALE_SETTLEMENT)
    for index in (DEV_COOPERATIVE, DEV_PROCESSOR):
        grant_role_once(admin, settlement, SHARE_COMMITTER_ROLE, accounts[index].address)
    grant_role_once(admin, settlement, DISTRIBUTOR_ROLE, accounts[DEV_DISTRIBUTOR].address)


def register_categories(client: ChainClient) -> None:
    """The merchant categories loans can budget for."""
    registrar = client.sender(DEV_REGISTRAR)
    fns = client.contract(MERCHANT_REGISTRY).functions
    for name in MERCHANT_CATEGORIES:
        if not fns.isCategory(keccak(text=name)).call():
            registrar.transact(fns.registerCategory(name))
