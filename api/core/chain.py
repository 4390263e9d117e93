"""The service's hands on the chain, shared by every audience.

- `org_account` / `org_sender`: each organisation signs with its own key, held encrypted in a
  keystore by the service and decrypted once per process;
- `recording_service`: the supply-chain recording service acting as an organisation;
- `loan_desk` / `factory_escrow`: the deployed LoanFactory, and the object-level check of every
  route that names an escrow (an address the factory did not issue is 404: never trusted, a
  look-alike contract could answer the same calls).

Failures are the domain's own errors (api/core/errors.py maps them): a node that cannot be
reached is 503, a contract that is not deployed 503.
"""

from __future__ import annotations

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import Web3Exception

from api.core.errors import Invalid, NotFound, Unavailable
from api.core.ids import same_address
from api.core.models import Organisation
from api.core.organisations import keystore_path
from api.core.settings import ApiSettings
from chain.accounts import load_keystore
from chain.client import ChainClient
from chain.errors import ChainError, ContractRevertError
from chain.sender import TRANSIENT, Sender
from chain.views import ViewReadError, read_one
from lending.loans.disbursement import LoanDesk
from lending.loans.errors import translate_reverts
from traceability import contracts
from traceability.errors import NotDeployedError
from traceability.service import RecordingService

LOAN_FACTORY = "LoanFactory"

_ACCOUNTS: dict[tuple[str, int], LocalAccount] = {}


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


def deployed_contract(chain: ChainClient, name: str) -> Contract | None:
    """The live deployment of `name` in the registry, or None when it is not deployed."""
    try:
        return contracts.deployed(chain, name)
    except NotDeployedError:  # also an unreadable registry: it deploys nothing
        return None


def recording_service(
    chain: ChainClient, settings: ApiSettings, org: Organisation
) -> RecordingService:
    """The recording service acting as `org` (signs with its keystore key)."""
    return RecordingService(chain, org_account(settings, org))


def loan_desk(chain: ChainClient) -> LoanDesk:
    """The desk of the deployed LoanFactory (503 when the lending contracts are not deployed)."""
    try:
        return LoanDesk(chain, LOAN_FACTORY)
    except (ChainError, *TRANSIENT):
        raise
    except Exception as exc:  # no deployment of the factory on this chain
        raise Unavailable(f"the lending contracts are not deployed on this chain ({exc})") from exc


def factory_escrow(chain: ChainClient, escrow: str) -> tuple[LoanDesk, Contract, int]:
    """(desk, escrow contract, loan id) of an escrow the factory issued; 404 otherwise."""
    if not Web3.is_address(escrow):
        raise Invalid("an escrow is a 0x address of 40 hex digits")
    desk = loan_desk(chain)
    address = Web3.to_checksum_address(escrow)
    missing = NotFound(f"no loan escrow at {address}")
    if not chain.w3.eth.get_code(address):
        raise missing
    contract = desk.escrow(address)
    try:  # chain.views: web3's call path cost ms of Python, and a batch of loans meets this
        loan_id = int(read_one(chain.w3, address, contract.abi, "terms")[0])
    except (ContractRevertError, ValueError, Web3Exception, ViewReadError) as exc:
        raise missing from exc
    issued = read_one(chain.w3, desk.factory.address, desk.factory.abi, "escrowOf", loan_id)
    if loan_id == 0 or not same_address(issued, address):
        raise missing
    return desk, contract, loan_id


def check_call(chain: ChainClient, fn: ContractFunction, sender: str) -> None:
    """eth_call `fn` from `sender`: the contract's named error (409) if it would be refused."""
    with translate_reverts():
        chain.check_call(fn, sender)
