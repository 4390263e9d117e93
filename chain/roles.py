"""OpenZeppelin AccessControl roles on any contract: granted once, never twice."""

from __future__ import annotations

from web3.contract import Contract
from web3.types import TxReceipt

from chain.sender import Sender


def has_role(contract: Contract, role: bytes, account: str) -> bool:
    """True if `account` holds `role` on `contract`."""
    return bool(contract.functions.hasRole(role, account).call())


def grant_role_once(
    admin: Sender, contract: Contract, role: bytes, account: str
) -> TxReceipt | None:
    """Grant `role` to `account` unless it holds it; the receipt, or None if nothing was sent."""
    if has_role(contract, role, account):
        return None
    return admin.transact(contract.functions.grantRole(role, account))
