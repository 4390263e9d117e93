"""Farmer consent for lenders: granted and revoked by the farmer's registered wallet.

A farmer either sends the transaction itself, or signs an EIP-712 message on its phone that the
cooperative's app (any account) relays, so the farmer needs no gas.
"""

from __future__ import annotations

import time
from typing import Any

from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from pydantic import TypeAdapter
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.types import TxReceipt

from chain.client import ChainClient
from chain.errors import ContractRevertError
from chain.events import EventReader
from chain.rpc import RpcError
from chain.sender import Sender
from traceability import contracts
from traceability.errors import TraceabilityError, domain_error
from traceability.models import Address, Bytes32

DOMAIN_NAME = "TealedgerConsent"
DOMAIN_VERSION = "1"
SIGNATURE_TTL = 3600  # default validity of a signed request, seconds

_CONSENT_TYPE = [
    {"name": "farmer", "type": "bytes32"},
    {"name": "lender", "type": "address"},
    {"name": "expiresAt", "type": "uint64"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]
_REVOCATION_TYPE = [
    {"name": "farmer", "type": "bytes32"},
    {"name": "lender", "type": "address"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]
_BYTES32 = TypeAdapter(Bytes32)
_ADDRESS = TypeAdapter(Address)


class ConsentService:
    """Grant, revoke, sign, relay and query consents in the ConsentRegistry."""

    def __init__(
        self, client: ChainClient, contract: Contract | None = None, from_block: int | None = None
    ) -> None:
        self.client = client
        self.contract = contract if contract is not None else contracts.consent_registry(client)
        # Where event queries start: the registered deployment's block (looked up when first
        # needed), or block 0 for a contract handed in.
        self._from_block = from_block if from_block is not None or contract is None else 0

    def _transact(self, sender: Sender, fn: ContractFunction) -> TxReceipt:
        """Send and wait; reverts become domain errors."""
        try:
            return sender.transact(fn)
        except ContractRevertError as exc:
            raise domain_error(exc) from exc

    # ------------------------------------------------------------------ the farmer sends

    def grant(
        self, wallet: LocalAccount, farmer: bytes | str, lender: str, expires_at: int
    ) -> TxReceipt:
        """The farmer's wallet lets `lender` read its profile until `expires_at` (unix s)."""
        fn = self.contract.functions.grantConsent(
            _BYTES32.validate_python(farmer), _ADDRESS.validate_python(lender), expires_at
        )
        return self._transact(self.client.sender_for(wallet), fn)

    def revoke(self, wallet: LocalAccount, farmer: bytes | str, lender: str) -> TxReceipt:
        """The farmer's wallet withdraws `lender`'s consent."""
        fn = self.contract.functions.revokeConsent(
            _BYTES32.validate_python(farmer), _ADDRESS.validate_python(lender)
        )
        return self._transact(self.client.sender_for(wallet), fn)

    # ------------------------------------------------------------------ the farmer signs

    def _typed(self, primary: str, fields: list[dict[str, str]], message: dict[str, Any]) -> Any:
        """The EIP-712 message for this registry on this chain."""
        return encode_typed_data(
            full_message={
                "types": {
                    "EIP712Domain": [
                        {"name": "name", "type": "string"},
                        {"name": "version", "type": "string"},
                        {"name": "chainId", "type": "uint256"},
                        {"name": "verifyingContract", "type": "address"},
                    ],
                    primary: fields,
                },
                "primaryType": primary,
                "domain": {
                    "name": DOMAIN_NAME,
                    "version": DOMAIN_VERSION,
                    "chainId": self.client.w3.eth.chain_id,
                    "verifyingContract": self.contract.address,
                },
                "message": message,
            }
        )

    def nonce(self, wallet: str) -> int:
        """The wallet's next signature nonce."""
        return int(self.contract.functions.nonces(_ADDRESS.validate_python(wallet)).call())

    def sign_grant(
        self,
        wallet: LocalAccount,
        farmer: bytes | str,
        lender: str,
        expires_at: int,
        deadline: int | None = None,
    ) -> tuple[int, bytes]:
        """Sign a consent for relaying; returns (deadline, signature)."""
        until = int(time.time()) + SIGNATURE_TTL if deadline is None else deadline
        message = {
            "farmer": _BYTES32.validate_python(farmer),
            "lender": _ADDRESS.validate_python(lender),
            "expiresAt": expires_at,
            "nonce": self.nonce(wallet.address),
            "deadline": until,
        }
        signed = wallet.sign_message(self._typed("Consent", _CONSENT_TYPE, message))
        return until, bytes(signed.signature)

    def sign_revocation(
        self, wallet: LocalAccount, farmer: bytes | str, lender: str, deadline: int | None = None
    ) -> tuple[int, bytes]:
        """Sign a revocation for relaying; returns (deadline, signature)."""
        until = int(time.time()) + SIGNATURE_TTL if deadline is None else deadline
        message = {
            "farmer": _BYTES32.validate_python(farmer),
            "lender": _ADDRESS.validate_python(lender),
            "nonce": self.nonce(wallet.address),
            "deadline": until,
        }
        signed = wallet.sign_message(self._typed("Revocation", _REVOCATION_TYPE, message))
        return until, bytes(signed.signature)

    def relay_grant_call(
        self, farmer: bytes | str, lender: str, expires_at: int, deadline: int, signature: bytes
    ) -> ContractFunction:
        """The grantConsentBySig call of a farmer-signed consent, for sending alone or pipelined."""
        return self.contract.functions.grantConsentBySig(
            _BYTES32.validate_python(farmer),
            _ADDRESS.validate_python(lender),
            expires_at,
            deadline,
            signature,
        )

    def relay_grant(
        self,
        relayer: Sender,
        farmer: bytes | str,
        lender: str,
        expires_at: int,
        deadline: int,
        signature: bytes,
    ) -> TxReceipt:
        """Submit a farmer-signed consent from any account."""
        fn = self.relay_grant_call(farmer, lender, expires_at, deadline, signature)
        return self._transact(relayer, fn)

    def relay_revocation(
        self, relayer: Sender, farmer: bytes | str, lender: str, deadline: int, signature: bytes
    ) -> TxReceipt:
        """Submit a farmer-signed revocation from any account."""
        fn = self.contract.functions.revokeConsentBySig(
            _BYTES32.validate_python(farmer), _ADDRESS.validate_python(lender), deadline, signature
        )
        return self._transact(relayer, fn)

    # ------------------------------------------------------------------ queries

    def has_consent(self, farmer: bytes | str, lender: str) -> bool:
        """True while `lender` holds an unexpired consent of `farmer`."""
        fid = _BYTES32.validate_python(farmer)
        return bool(
            self.contract.functions.hasConsent(fid, _ADDRESS.validate_python(lender)).call()
        )

    def expiry(self, farmer: bytes | str, lender: str) -> int:
        """When the consent ends (0 if none)."""
        fid = _BYTES32.validate_python(farmer)
        return int(
            self.contract.functions.consentExpiry(fid, _ADDRESS.validate_python(lender)).call()
        )

    def granted_lenders(self, farmer: bytes | str) -> list[str]:
        """Every lender `farmer` ever granted consent to (revoked and expired ones too), as
        checksum addresses in order of first grant, from ConsentGranted events."""
        fid = _BYTES32.validate_python(farmer)
        if self._from_block is None:
            self._from_block = contracts.deployment_block(self.client, contracts.CONSENT_REGISTRY)
        reader = EventReader(
            self.client.w3, self.contract.address, self.contract.abi, self._from_block
        )
        try:
            events = reader.events("ConsentGranted", "farmer", [fid])
        except RpcError as exc:
            address = self.contract.address
            raise TraceabilityError(f"eth_getLogs on {address} failed: {exc.rpc_message}") from exc
        return list(dict.fromkeys(e.args["lender"] for e in events))
