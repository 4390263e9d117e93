"""Lending contracts for lender and merchant organisations: roles, eCNY, escrow lookups.

- `ensure_lender_role()` has the platform admin (account 0) grant LENDER_ROLE on the
  LoanFactory and, on development chains only, mint the lender the eCNY it lends.
- `factory_escrow()` is the object-level check of every route that names an escrow: an address
  the LoanFactory did not issue is 404 (never trusted: a look-alike contract could answer).
- `loan_call()` maps what lending/disbursement.py raises: a contract rule becomes the global
  409 with the decoded error, terms the factory would refuse 422, an unreachable node 503.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import HTTPException, status
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import Web3Exception

from api.core.chain import chain_call, same_address
from api.core.models import Organisation
from chain.client import ChainClient
from chain.errors import ContractRevertError
from lending.loans.contracts import LENDER_ROLE, LOAN_FACTORY
from lending.loans.disbursement import LoanDesk
from lending.loans.errors import ContractRuleError, LoanTermsError, OrderNotExecutedError


@contextmanager
def loan_call() -> Iterator[None]:
    """Map lending errors (and, through chain_call, node failures) onto HTTP."""
    with chain_call():
        try:
            yield
        except ContractRuleError as exc:
            cause = exc.__cause__
            if isinstance(cause, ContractRevertError):
                raise cause from exc  # the global handler: 409 with name and values
            raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
        except LoanTermsError as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
        except OrderNotExecutedError as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc


def loan_desk(chain: ChainClient) -> LoanDesk:
    """The desk of the deployed LoanFactory (503 when the lending contracts are not deployed)."""
    try:
        with chain_call():
            return LoanDesk(chain, LOAN_FACTORY)
    except HTTPException:
        raise
    except Exception as exc:  # no deployment of the factory on this chain
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"the lending contracts are not deployed on this chain ({exc})",
        ) from exc


def ensure_lender_role(chain: ChainClient, org: Organisation, mint_fen: int = 0) -> list[str]:
    """Grant the organisation LENDER_ROLE (platform admin) and, in development, mint it
    `mint_fen` eCNY when its balance is lower; returns the transaction hashes sent."""
    admin = chain.sender(0)
    address = Web3.to_checksum_address(org.chain_address)
    desk = loan_desk(chain)
    sent: list[str] = []
    with loan_call():
        factory = desk.factory.functions
        if not factory.hasRole(LENDER_ROLE, address).call():
            receipt = admin.transact(factory.grantRole(LENDER_ROLE, address))
            sent.append(receipt["transactionHash"].to_0x_hex())
        balance = desk.token.functions.balanceOf(address).call()
        if mint_fen and balance < mint_fen:
            receipt = admin.transact(desk.token.functions.mint(address, mint_fen - balance))
            sent.append(receipt["transactionHash"].to_0x_hex())
    return sent


def factory_escrow(chain: ChainClient, escrow: str) -> tuple[LoanDesk, Contract, int]:
    """(desk, escrow contract, loan id) of an escrow the factory issued; 404 otherwise."""
    if not Web3.is_address(escrow):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "an escrow is a 0x address of 40 hex digits"
        )
    desk = loan_desk(chain)
    address = Web3.to_checksum_address(escrow)
    missing = HTTPException(status.HTTP_404_NOT_FOUND, f"no loan escrow at {address}")
    with chain_call():
        if not chain.w3.eth.get_code(address):
            raise missing
        contract = desk.escrow(address)
        try:
            loan_id = int(contract.functions.terms().call()[0])
        except (ContractRevertError, ValueError, Web3Exception) as exc:
            raise missing from exc
        issued = desk.factory.functions.escrowOf(loan_id).call()
    if loan_id == 0 or not same_address(issued, address):
        raise missing
    return desk, contract, loan_id
