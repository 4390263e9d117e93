"""Organisations on chain: their keystore-held signer, their gas, their TeaTrace role."""

from __future__ import annotations

from eth_account.signers.local import LocalAccount
from pydantic import BaseModel
from web3 import Web3

from api.models import Organisation, Role
from api.organisations import keystore_path
from api.settings import ApiSettings
from chain.accounts import load_keystore
from chain.client import ChainClient
from chain.sender import Sender
from traceability import contracts

# TeaTrace role of each organisation role that has one.
TEA_TRACE_ROLES = {
    Role.COOPERATIVE: contracts.COOPERATIVE_ROLE,
    Role.PROCESSOR: contracts.PROCESSOR_ROLE,
    Role.DISTRIBUTOR: contracts.DISTRIBUTOR_ROLE,
    Role.INSPECTOR: contracts.INSPECTOR_ROLE,
}
# Development chains only: what a new organisation is given to pay for gas.
DEV_GAS_WEI = 10 * 10**18
DEV_GAS_FLOOR_WEI = 10**18

_ACCOUNTS: dict[tuple[str, int], LocalAccount] = {}


class Provisioned(BaseModel):
    """What provisioning did (each step is skipped when already done)."""

    organisation_id: int
    chain_address: str
    funded_wei: int
    role_granted: str | None
    transactions: list[str]


def org_account(settings: ApiSettings, org: Organisation) -> LocalAccount:
    """The organisation's signing key, decrypted once per process."""
    assert org.id is not None
    cache_key = (str(settings.keystore_dir), org.id)
    if cache_key not in _ACCOUNTS:
        password = settings.org_keystore_password.get_secret_value()
        _ACCOUNTS[cache_key] = load_keystore(keystore_path(settings.keystore_dir, org.id), password)
    return _ACCOUNTS[cache_key]


def org_sender(chain: ChainClient, settings: ApiSettings, org: Organisation) -> Sender:
    """A nonce-tracking sender signing as the organisation."""
    return chain.sender_for(org_account(settings, org))


def provision(chain: ChainClient, org: Organisation, fund_gas: bool) -> Provisioned:
    """Give the organisation gas (development) and its TeaTrace role; idempotent."""
    assert org.id is not None
    platform = chain.sender(0)
    address = Web3.to_checksum_address(org.chain_address)
    sent: list[str] = []
    funded = 0
    if fund_gas and chain.w3.eth.get_balance(address) < DEV_GAS_FLOOR_WEI:
        receipt = platform.transact({"to": address, "value": DEV_GAS_WEI}, gas=21_000)
        sent.append(receipt["transactionHash"].to_0x_hex())
        funded = DEV_GAS_WEI
    granted = None
    role = TEA_TRACE_ROLES.get(org.role)
    if role is not None:
        tea = contracts.tea_trace(chain)
        if not tea.functions.hasRole(role, address).call():
            receipt = platform.transact(tea.functions.grantRole(role, address))
            sent.append(receipt["transactionHash"].to_0x_hex())
            granted = org.role.value
    return Provisioned(
        organisation_id=org.id,
        chain_address=address,
        funded_wei=funded,
        role_granted=granted,
        transactions=sent,
    )
