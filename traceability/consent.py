"""Farmer consent for lenders: granted and revoked by the farmer's registered wallet.

A farmer either sends the transaction itself, or signs an EIP-712 message on its phone that the
cooperative's app (any account) relays, so the farmer needs no gas. A signed message names the
farmer's wallet epoch (TeaTrace's count of wallet changes) and the wallet's nonce, so it is void
once the wallet changes (even back) and once the wallet burns the nonce (`burn_nonce`: withdrawing
a signature nobody relayed yet). Deadlines are counted from the chain's latest block, the clock
the registry checks them against (chain.clock), never the server's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from weakref import WeakKeyDictionary

from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from pydantic import TypeAdapter
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.types import TxReceipt

from chain.client import ChainClient
from chain.clock import chain_now
from chain.eip712 import typed_data
from chain.errors import ContractRevertError
from chain.rpc import RpcError
from chain.sender import Sender
from chain.views import read_one
from traceability import contracts
from traceability.errors import TraceabilityError, domain_error
from traceability.models import Address, Bytes32

DOMAIN_NAME = "TealedgerConsent"
DOMAIN_VERSION = "1"
SIGNATURE_TTL = 3600  # default validity of a signed request, seconds of chain time
# grantConsentBySig's gas limit for pipelined relays (an estimate cannot see the relays ahead
# of it): 88k measured for a new wallet's first consent to a new lender, the costliest path
# (tests/contracts/test_consent_registry.py).
CONSENT_GAS = 120_000

_CONSENT_TYPE = [
    {"name": "farmer", "type": "bytes32"},
    {"name": "lender", "type": "address"},
    {"name": "expiresAt", "type": "uint64"},
    {"name": "walletEpoch", "type": "uint256"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]
_REVOCATION_TYPE = [
    {"name": "farmer", "type": "bytes32"},
    {"name": "lender", "type": "address"},
    {"name": "walletEpoch", "type": "uint256"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]
_BYTES32 = TypeAdapter(Bytes32)
_TEA_OF: WeakKeyDictionary[ChainClient, dict[str, str]] = WeakKeyDictionary()
"""The TeaTrace each ConsentRegistry reads, by client and registry address."""
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
        self._tea: Contract | None = None

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
        return encode_typed_data(full_message=self._full(primary, fields, message))

    def _full(
        self, primary: str, fields: list[dict[str, str]], message: dict[str, Any]
    ) -> dict[str, Any]:
        """The full typed data (eth_signTypedData_v4) for this registry on this chain."""
        domain = (DOMAIN_NAME, DOMAIN_VERSION, self.client.w3.eth.chain_id, self.contract.address)
        return typed_data(domain, primary, fields, message)

    def consent_typed_data(
        self, wallet: str, farmer: bytes | str, lender: str, expires_at: int, deadline: int
    ) -> dict[str, Any]:
        """A Consent as JSON typed data for a wallet app to sign (ids as 0x hex)."""
        message = {
            "farmer": "0x" + _BYTES32.validate_python(farmer).hex(),
            "lender": _ADDRESS.validate_python(lender),
            "expiresAt": expires_at,
            "walletEpoch": self.wallet_epoch(farmer),
            "nonce": self.nonce(wallet),
            "deadline": deadline,
        }
        return self._full("Consent", _CONSENT_TYPE, message)

    def nonce(self, wallet: str) -> int:
        """The wallet's next signature nonce."""
        return int(self._read("nonces", _ADDRESS.validate_python(wallet)))

    def _read(self, function: str, *args: Any) -> Any:
        """One view of the registry (chain.views.read_one)."""
        return read_one(self.client.w3, self.contract.address, self.contract.abi, function, *args)

    def wallet_epoch(self, farmer: bytes | str) -> int:
        """The farmer's wallet epoch in the TeaTrace this registry reads."""
        if self._tea is None:
            # Immutable in the registry: asked once per client and registry, not per request.
            known = _TEA_OF.setdefault(self.client, {})
            if self.contract.address not in known:
                known[self.contract.address] = self.contract.functions.teaTrace().call()
            self._tea = self.client.contract(contracts.TEA_TRACE, known[self.contract.address])
        return contracts.wallet_epoch(self.client, _BYTES32.validate_python(farmer), self._tea)

    def deadline(self, ttl: int = SIGNATURE_TTL) -> int:
        """A relay deadline `ttl` seconds after the chain's latest block."""
        return chain_now(self.client.w3) + ttl

    def request(
        self,
        wallet: str,
        farmer: bytes | str,
        lender: str,
        deadline: int,
        expires_at: int | None = None,
    ) -> Any:
        """The typed data a wallet signs: a Consent until `expires_at`, or (None) a Revocation,
        over the farmer's current wallet epoch and the wallet's current nonce."""
        message: dict[str, Any] = {
            "farmer": _BYTES32.validate_python(farmer),
            "lender": _ADDRESS.validate_python(lender),
        }
        if expires_at is not None:
            message["expiresAt"] = expires_at
        message["walletEpoch"] = self.wallet_epoch(farmer)
        message["nonce"] = self.nonce(wallet)
        message["deadline"] = deadline
        if expires_at is None:
            return self._typed("Revocation", _REVOCATION_TYPE, message)
        return self._typed("Consent", _CONSENT_TYPE, message)

    def sign_grant(
        self,
        wallet: LocalAccount,
        farmer: bytes | str,
        lender: str,
        expires_at: int,
        deadline: int | None = None,
    ) -> tuple[int, bytes]:
        """Sign a consent for relaying; returns (deadline, signature)."""
        until = self.deadline() if deadline is None else deadline
        signed = wallet.sign_message(
            self.request(wallet.address, farmer, lender, until, expires_at)
        )
        return until, bytes(signed.signature)

    def sign_revocation(
        self, wallet: LocalAccount, farmer: bytes | str, lender: str, deadline: int | None = None
    ) -> tuple[int, bytes]:
        """Sign a revocation for relaying; returns (deadline, signature)."""
        until = self.deadline() if deadline is None else deadline
        signed = wallet.sign_message(self.request(wallet.address, farmer, lender, until))
        return until, bytes(signed.signature)

    def burn_nonce(self, wallet: LocalAccount) -> TxReceipt:
        """The wallet uses up its nonce: what it signed and nobody relayed yet is void."""
        return self._transact(self.client.sender_for(wallet), self.contract.functions.burnNonce())

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

    def relay_grants(
        self, relayer: Sender, calls: Sequence[ContractFunction]
    ) -> list[TxReceipt | Exception]:
        """Relay checked grantConsentBySig calls back to back with their measured gas (blocks
        shared where the node mines on demand); each one's receipt or, in its place, the error
        it failed with on chain (the registry's named error where it gave one)."""
        pending = relayer.send_many(calls, gas=CONSENT_GAS)
        return [
            domain_error(settled) if isinstance(settled, ContractRevertError) else settled
            for settled in relayer.settle(pending)
        ]

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
        return int(self._read("consentExpiry", fid, _ADDRESS.validate_python(lender)))

    def granted_lenders(self, farmer: bytes | str) -> list[str]:
        """Every lender `farmer` ever granted consent to (revoked and expired ones too), as
        checksum addresses in order of first grant, from ConsentGranted events."""
        fid = _BYTES32.validate_python(farmer)
        if self._from_block is None:
            self._from_block = contracts.deployment_block(self.client, contracts.CONSENT_REGISTRY)
        reader = self.client.event_reader(
            self.contract.address, self.contract.abi, self._from_block
        )
        try:
            events = reader.events("ConsentGranted", "farmer", [fid])
        except RpcError as exc:
            address = self.contract.address
            raise TraceabilityError(f"eth_getLogs on {address} failed: {exc.rpc_message}") from exc
        return list(dict.fromkeys(e.args["lender"] for e in events))
