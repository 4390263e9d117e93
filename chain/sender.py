"""Sign locally, send with local nonces, pipeline many transactions, decode reverts.

Nonces come from a local counter, so hundreds of transactions go out before the first receipt
is awaited. A send that times out is never blindly repeated: the sender first asks the node
whether the transaction (by hash) or its nonce is already known, and resubmits only the same
signed bytes, which cannot be executed twice.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, TypeVar

import requests
from coincurve import PrivateKey
from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from web3 import HTTPProvider, Web3
from web3.contract.contract import ContractConstructor, ContractFunction
from web3.exceptions import TimeExhausted, TransactionNotFound, Web3RPCError
from web3.types import TxReceipt

from chain.errors import (
    ContractRevertError,
    TransactionError,
    TransactionOutcomeUnknownError,
    TransactionTimeoutError,
)
from chain.revert import RevertDecoder, revert_data
from chain.rpc import DEFAULT_TIMEOUT, JsonRpc, LogQueryError, RpcError
from chain.signing import Signed, sign_1559, signs_directly
from chain.views import call_data

GAS_MARGIN_PCT = 25  # estimates can fall short when pipelined txs change state first
PRIORITY_FEE_WEI = 10**9
# Measured gas bounds above this could pass a node's block gas limit: such calls are estimated.
MAX_BOUND_GAS = 10_000_000
T = TypeVar("T")
R = TypeVar("R")
TRANSIENT: tuple[type[BaseException], ...] = (
    requests.ConnectionError,
    requests.Timeout,
    ConnectionError,
    TimeoutError,
)

MAX_FEE_GROWTH = 64
"""The most a pipeline's quote anticipates the base fee to grow (~35 blocks above the gas
target): a bigger cap could exceed what the account can pay for up front."""
RECEIPT_POLL = 0.005  # seconds between polls of receipts still missing (anvil mines at once)
MAX_PACKED_BLOCKS = 10_000  # blocks one pipeline's pending transactions may need
RECEIPT_BATCH = 50  # receipts per JSON-RPC batch request (a 500-record one is ~300 kB)
_QUANTITIES = ("status", "gasUsed", "blockNumber", "transactionIndex", "cumulativeGasUsed")

Call = ContractFunction | ContractConstructor | dict[str, Any]


def bounded(gas: int) -> int | None:
    """`gas` as a limit to send with, or None (estimate instead) past MAX_BOUND_GAS."""
    return gas if gas <= MAX_BOUND_GAS else None


@dataclass(frozen=True)
class PendingTx:
    """A signed transaction that the node accepted; wait() turns it into a receipt."""

    hash: HexBytes
    nonce: int
    tx: dict[str, Any] = field(repr=False)


NONCE_RETRIES = 5
"""How often a send is signed again after another process took its nonce."""
NONCE_TAKEN = (
    "nonce too low",
    "replacement transaction underpriced",
    "nonce has already been used",
)
"""What nodes (anvil, ganache, geth) say when a nonce is used by another transaction."""


class NonceTakenError(TransactionError):
    """The node refused the transaction: its nonce is used by another (not this one)."""


def _nonce_taken(exc: BaseException) -> bool:
    """True if the node's refusal says the nonce is used already."""
    text = str(exc).lower()
    return any(phrase in text for phrase in NONCE_TAKEN)


class Sender:
    """Sends transactions for one local account. Several processes may sign with one key:
    a nonce another took first is taken again from the node (`NONCE_RETRIES` times)."""

    def __init__(
        self,
        w3: Web3,
        account: LocalAccount,
        decoder: RevertDecoder | None = None,
        retries: int = 5,
        backoff: float = 0.2,
        receipt_timeout: float = 120.0,
        sent_hooks: list[Callable[[], None]] | None = None,
    ) -> None:
        self.w3 = w3
        self._account = account
        self._key = PrivateKey(bytes(account.key))
        self.decoder = decoder or RevertDecoder()
        self._retries = retries
        self._backoff = backoff
        self._receipt_timeout = receipt_timeout
        self._sent_hooks = sent_hooks if sent_hooks is not None else []
        self._nonce: int | None = None
        self._packing: bool | None = None
        self._lock = threading.Lock()
        self._chain_id = w3.eth.chain_id
        provider = w3.provider
        # Receipts of many transactions are fetched in JSON-RPC batches where the node speaks
        # HTTP; the in-process EVM keeps web3's one-at-a-time path.
        self._rpc = (
            JsonRpc(str(provider.endpoint_uri), _timeout_of(provider))
            if isinstance(provider, HTTPProvider)
            else None
        )

    def __repr__(self) -> str:
        """Never shows the key."""
        return f"Sender({self.address})"

    @property
    def address(self) -> str:
        """The signing address."""
        return str(self._account.address)

    def reset_nonce(self) -> None:
        """Forget the local nonce; the next send asks the node again."""
        with self._lock:
            self._nonce = None

    def _next_nonce(self) -> int:
        """Take the next local nonce (from the node's pending count on first use)."""
        with self._lock:
            if self._nonce is None:
                self._nonce = self.w3.eth.get_transaction_count(self._account.address, "pending")
            nonce = self._nonce
            self._nonce += 1
            return nonce

    def fees(self, pipeline: Sequence[int] = ()) -> dict[str, int]:
        """EIP-1559 fees from the latest base fee (legacy gas price where there is none).

        `pipeline` holds the gas limits of transactions sent with this one quote. One above
        the block's gas target (half its limit) can fill a block of its own (a dev node mines
        one per transaction) and raise the base fee by up to 1/8: the cap grows by that much
        for each, else the later ones of a pipeline of full blocks could never be mined.
        """
        block = self.w3.eth.get_block("latest")
        base = block.get("baseFeePerGas")
        if base is None:
            return {"gasPrice": self.w3.eth.gas_price}
        target = max(int(block["gasLimit"]) // 2, 1)
        ceiling = MAX_FEE_GROWTH * base
        for gas in pipeline:
            if gas > target:
                base += -(-base * (gas - target) // (8 * target))  # rounded up: never short
        base = min(base, ceiling)
        return {
            "maxFeePerGas": 2 * base + PRIORITY_FEE_WEI,
            "maxPriorityFeePerGas": PRIORITY_FEE_WEI,
        }

    def _base_tx(self, call: Call, value: int) -> dict[str, Any]:
        """`from`, `to`, `data`, `value` for a contract call, constructor or plain dict."""
        if isinstance(call, dict):
            tx = dict(call)
        elif isinstance(call, ContractConstructor):
            tx = {"data": call.data_in_transaction}
        else:
            # build_transaction looked the ABI entry up again, mapped every argument through
            # web3's normalizers and formatted a whole transaction: a tenth of an order file.
            tx = {"to": call.address, "data": call_data(call)}
        tx.setdefault("value", value)
        tx["from"] = self.address
        return tx

    def estimate_gas(self, tx: dict[str, Any]) -> int:
        """Gas estimate plus margin; a revert here raises the decoded contract error."""
        probe = {k: tx[k] for k in ("from", "to", "data", "value") if k in tx}
        try:
            estimate = self.w3.eth.estimate_gas(probe)  # type: ignore[arg-type]
        except Exception as exc:
            self._raise_decoded(exc)
            raise
        return estimate * (100 + GAS_MARGIN_PCT) // 100

    def preflight(self, tx: dict[str, Any]) -> None:
        """eth_call the transaction as it would be sent: the decoded contract error if it would
        revert. The cheap pre-flight for a call sent with a measured gas bound: ganache's
        eth_estimateGas costs ~50x an eth_call (docs/demo.md, "How long it takes")."""
        probe = {k: tx[k] for k in ("from", "to", "data", "value") if k in tx}
        try:
            self.w3.eth.call(probe)  # type: ignore[arg-type]
        except Exception as exc:
            self._raise_decoded(exc)
            raise

    def _raise_decoded(self, exc: BaseException) -> None:
        """Re-raise a provider exception as a named ContractRevertError if it carries data."""
        data = revert_data(exc)
        if data is not None:
            raise self.decoder.decode(data) from None

    def send(
        self,
        call: Call,
        *,
        gas: int | None = None,
        value: int = 0,
        fees: dict[str, int] | None = None,
        preflight: bool = False,
    ) -> PendingTx:
        """Sign and submit one transaction without waiting for its receipt. Without `gas` the
        node's estimate (plus margin) is the limit; with it, `preflight` eth_calls it first."""
        tx = self._base_tx(call, value)
        if gas is not None and preflight:
            self.preflight(tx)
        tx["gas"] = gas if gas is not None else self.estimate_gas(tx)
        tx.update(fees or self.fees())
        tx["chainId"] = self._chain_id
        for attempt in range(NONCE_RETRIES + 1):
            tx["nonce"] = self._next_nonce()
            signed = self._sign(tx)
            try:
                self._submit(signed.raw_transaction, HexBytes(signed.hash), tx["nonce"])
            except NonceTakenError:
                # Another process signing with this key used the nonce first; this transaction
                # was refused, so it can never run: sign it again with the node's next nonce.
                self.reset_nonce()
                if attempt == NONCE_RETRIES:
                    raise
                continue
            except Exception:
                # The nonce may now be a gap: resync from the node on the next send.
                self.reset_nonce()
                raise
            return PendingTx(HexBytes(signed.hash), tx["nonce"], tx)
        raise AssertionError("unreachable")  # pragma: no cover

    def _sign(self, tx: dict[str, Any]) -> Signed:
        """The signed transaction: directly where it is a plain type-2 one (chain.signing, a
        fifth of eth_account's time), else through eth_account."""
        if signs_directly(tx):
            return sign_1559(self._key, tx)
        signed = self._account.sign_transaction(tx)
        return Signed(bytes(signed.raw_transaction), bytes(signed.hash))

    def send_many(
        self, calls: Iterable[Call], *, gas: int | None = None, value: int = 0
    ) -> list[PendingTx]:
        """Submit many transactions back to back (one fee quote), receipts awaited later. On a
        node that mines on demand (anvil), those sent with a gas bound are mined together, in
        blocks of at most the gas target (an estimate would not see the pending ones)."""
        calls = list(calls)
        if len(calls) < 2 or gas is None or not self.packs_blocks():
            return self._send_many(calls, gas, value)
        per_block = self._per_block(gas)
        sent: list[PendingTx] = []
        for start in range(0, len(calls), per_block):
            try:
                with self.mined_together():
                    sent += self._send_many(calls[start : start + per_block], gas, value)
            except (*TRANSIENT, TransactionError) as exc:
                if not sent or isinstance(exc, ContractRevertError):
                    raise
                # The parts before were sent (and mined): never let the caller think otherwise.
                doubt = exc.hashes if isinstance(exc, TransactionOutcomeUnknownError) else ()
                raise _in_doubt(sent, "while the next were being sent", doubt) from exc
        return sent

    def _per_block(self, gas: int) -> int:
        """How many transactions of `gas` to mine together in one block: blocks of at most the
        gas target (half the limit), so the base fee never rises and a fee quote holds."""
        target = int(self.w3.eth.get_block("latest")["gasLimit"]) // 2
        return max(1, target // gas)

    def packed(
        self, items: Sequence[T], gas: int, send: Callable[[Sequence[T]], list[R]]
    ) -> list[R]:
        """`send` called on parts of `items` whose transactions (each within `gas`, of this or
        any other sender) fill a block up to the gas target, each part mined together on
        leaving where the node mines on demand (mined_together); what the calls returned."""
        per_block = self._per_block(gas)
        out: list[R] = []
        for start in range(0, len(items), per_block):
            with self.mined_together():
                out += send(items[start : start + per_block])
        return out

    def packs_blocks(self) -> bool:
        """True on anvil, whose every block costs time that grows with the chain's storage (it
        recomputes the state root over all of it: 1.2 µs a slot, 150 ms a block after a
        3,000-farmer season, under 1 ms on a fresh chain), so a pipeline is cheaper mined in a
        few blocks than in a block a transaction."""
        if self._packing is None:
            version = self._rpc.call("web3_clientVersion", []) if self._rpc else ""
            self._packing = str(version).lower().startswith("anvil")
        return self._packing

    @contextmanager
    def mined_together(self) -> Iterator[None]:
        """Transactions sent inside (with gas bounds: an estimate would not see the pending
        ones) are mined together in full blocks on leaving, where the node mines on demand
        (anvil); elsewhere a no-op. Automine is held, then whatever is pending is mined: another
        process's transaction sent meanwhile is mined with them, and the pool is mined once
        more after automine is back, for one that came in between. Full blocks raise the base
        fee by up to 1/8 each and a quote allows it to double: keep what is sent inside within
        a few blocks (send_many groups longer pipelines itself)."""
        if not self.packs_blocks():
            yield
            return
        assert self._rpc is not None
        self._rpc.call("evm_setAutomine", [False])
        try:
            yield
        except BaseException:
            # Best effort, and never in place of the error that got here: a node that stops
            # answering keeps automine off until it answers again or restarts (docs/demo.md).
            with suppress(Exception):
                self._restore_automine()
            raise
        self._restore_automine()

    def _restore_automine(self) -> None:
        """Mine what is pending, automine back on, then mine what came in between."""
        assert self._rpc is not None
        try:
            self._mine_pending()
        finally:
            self._rpc.call("evm_setAutomine", [True])
            self._mine_pending()

    def _mine_pending(self) -> None:
        """Mine blocks until no transaction is pending (bounded: a nonce gap stays queued)."""
        assert self._rpc is not None
        for _ in range(MAX_PACKED_BLOCKS):
            status = self._rpc.call("txpool_status", [])
            if int(status.get("pending", "0x0"), 16) == 0:
                return
            self._rpc.call("evm_mine", [])

    def _send_many(self, calls: list[Call], gas: int | None, value: int) -> list[PendingTx]:
        """send_many's sends."""
        fees = self.fees([gas] * len(calls) if gas is not None else ())
        sent: list[PendingTx] = []
        for call in calls:
            try:
                sent.append(self.send(call, gas=gas, value=value, fees=fees))
            except (*TRANSIENT, TransactionError) as exc:
                if sent and not isinstance(exc, ContractRevertError):
                    raise _in_doubt(sent, "while the next was being sent") from exc
                raise
        return sent

    def _submit(self, raw: bytes, tx_hash: HexBytes, nonce: int) -> None:
        """eth_sendRawTransaction with bounded retries that never double-send."""
        for attempt in range(self._retries + 1):
            try:
                self._send_raw(raw)
            except RpcError as exc:  # the node's answer, not a lost connection
                self._refused(exc, tx_hash, nonce)
                return
            except (*TRANSIENT, LogQueryError) as exc:
                if self._landed(tx_hash, nonce):
                    return
                if attempt == self._retries:
                    raise TransactionError(
                        f"node unreachable while sending tx {tx_hash.to_0x_hex()} (nonce {nonce}) "
                        f"after {self._retries + 1} attempts: {exc}"
                    ) from exc
                time.sleep(self._backoff * 2**attempt)
            except (Web3RPCError, ValueError) as exc:
                self._refused(exc, tx_hash, nonce)
                return
            else:
                for hook in self._sent_hooks:
                    hook()
                return

    def _send_raw(self, raw: bytes) -> None:
        """eth_sendRawTransaction: raw JSON-RPC where the node speaks HTTP (web3's call path
        took 4.6 ms a transaction against 0.9 here), else through web3."""
        if self._rpc is None:
            self.w3.eth.send_raw_transaction(raw)
        else:
            # Never resent blindly on a lost connection: _submit asks whether it landed first.
            self._rpc.call("eth_sendRawTransaction", ["0x" + raw.hex()], resend=False)

    def _refused(self, exc: BaseException, tx_hash: HexBytes, nonce: int) -> None:
        """The node refused the transaction: fine if it has it already, else the decoded
        contract error, NonceTakenError, or TransactionError saying why."""
        if self._benign_duplicate(exc, tx_hash):
            return
        self._raise_decoded(exc)
        if _nonce_taken(exc):
            raise NonceTakenError(f"nonce {nonce} already used: {exc}") from exc
        raise TransactionError(f"node rejected tx (nonce {nonce}): {exc}") from exc

    def _benign_duplicate(self, exc: BaseException, tx_hash: HexBytes) -> bool:
        """The node already has this exact transaction (an earlier attempt got through)."""
        text = str(exc).lower()
        if "already known" in text or "known transaction" in text:
            return True
        return "nonce too low" in text and self._known(tx_hash)

    def _known(self, tx_hash: HexBytes) -> bool:
        """True if the node knows the transaction."""
        try:
            self.w3.eth.get_transaction(tx_hash)
        except (TransactionNotFound, *TRANSIENT):
            return False
        return True

    def _landed(self, tx_hash: HexBytes, nonce: int) -> bool:
        """After a timeout: did the transaction, or at least its nonce, reach the node?"""
        if self._known(tx_hash):
            return True
        try:
            return self.w3.eth.get_transaction_count(self._account.address, "pending") > nonce
        except TRANSIENT:
            return False

    def wait(self, pending: Sequence[PendingTx]) -> list[TxReceipt]:
        """Receipts in order; a reverted transaction raises its decoded error."""
        receipts = []
        for i, p in enumerate(pending):
            try:
                receipt = self.w3.eth.wait_for_transaction_receipt(
                    p.hash, timeout=self._receipt_timeout, poll_latency=0.02
                )
            except TRANSIENT as exc:
                raise _in_doubt(pending[i:], "before their receipts") from exc
            except TimeExhausted:
                raise TransactionTimeoutError(
                    f"tx {p.hash.to_0x_hex()} (nonce {p.nonce}) not mined in "
                    f"{self._receipt_timeout}s"
                ) from None
            if receipt["status"] != 1:
                raise self._failure(p, receipt)
            receipts.append(receipt)
        return receipts

    def settle(self, pending: Sequence[PendingTx]) -> list[TxReceipt | TransactionError]:
        """Receipts in order, each a mined success or, in its place, the failed transaction's
        decoded error (ContractRevertError where the contract named one).

        The missing receipts are asked for together, one JSON-RPC batch per poll, instead of
        one web3 call (and its log formatting) per transaction. Over HTTP the receipts keep
        their logs as the node sent them (hex strings: chain.events.EventDecoder reads both);
        status, gas, block number and indexes are ints and the hash is HexBytes, as from web3.
        A node that stops answering leaves the unseen ones in doubt
        (TransactionOutcomeUnknownError); one never mined raises TransactionTimeoutError.
        """
        if self._rpc is None:
            return [self._settled_one(p) for p in pending]
        found: dict[int, dict[str, Any]] = {}
        deadline = time.monotonic() + self._receipt_timeout
        while len(found) < len(pending):
            missing = [i for i in range(len(pending)) if i not in found]
            for start in range(0, len(missing), RECEIPT_BATCH):
                part = missing[start : start + RECEIPT_BATCH]
                params = [[pending[i].hash.to_0x_hex()] for i in part]
                try:
                    replies = self._rpc.batch("eth_getTransactionReceipt", params)
                except LogQueryError as exc:
                    unseen = [p for i, p in enumerate(pending) if i not in found]
                    raise _in_doubt(unseen, "before their receipts") from exc
                found.update((i, r) for i, r in zip(part, replies, strict=True) if r is not None)
            if len(found) < len(pending):
                if time.monotonic() > deadline:
                    first = pending[min(set(range(len(pending))) - set(found))]
                    raise TransactionTimeoutError(
                        f"tx {first.hash.to_0x_hex()} (nonce {first.nonce}) not mined in "
                        f"{self._receipt_timeout}s"
                    )
                time.sleep(RECEIPT_POLL)
        out: list[TxReceipt | TransactionError] = []
        for i, p in enumerate(pending):
            receipt = _receipt(found[i])
            out.append(receipt if receipt["status"] == 1 else self._failure(p, receipt))
        return out

    def _settled_one(self, p: PendingTx) -> TxReceipt | TransactionError:
        """One receipt through web3, or the failed transaction's error."""
        try:
            return self.wait([p])[0]
        except TransactionOutcomeUnknownError:
            raise
        except TransactionError as exc:
            if isinstance(exc, TransactionTimeoutError):
                raise
            return exc

    def _failure(self, p: PendingTx, receipt: TxReceipt) -> TransactionError:
        """Replay a failed transaction as a call to learn its revert reason."""
        call = {k: p.tx[k] for k in ("from", "to", "data", "value", "gas") if k in p.tx}
        try:
            self.w3.eth.call(call, block_identifier=max(receipt["blockNumber"] - 1, 0))  # type: ignore[arg-type]
        except Exception as exc:
            data = revert_data(exc)
            if data is not None:
                return self.decoder.decode(data)
        if receipt["gasUsed"] >= p.tx["gas"]:
            return TransactionError(f"tx {p.hash.to_0x_hex()} ran out of gas ({p.tx['gas']} given)")
        return TransactionError(
            f"tx {p.hash.to_0x_hex()} reverted in block {receipt['blockNumber']}"
        )

    def transact(
        self, call: Call, *, gas: int | None = None, value: int = 0, preflight: bool = False
    ) -> TxReceipt:
        """Send one transaction and wait for its receipt (`preflight`: see send)."""
        return self.wait([self.send(call, gas=gas, value=value, preflight=preflight)])[0]


def _timeout_of(provider: HTTPProvider) -> float:
    """The provider's request timeout, which the Sender's own JSON-RPC keeps."""
    timeout = dict(provider.get_request_kwargs()).get("timeout", DEFAULT_TIMEOUT)
    return float(timeout) if isinstance(timeout, int | float) else DEFAULT_TIMEOUT


def _receipt(raw: dict[str, Any]) -> TxReceipt:
    """A JSON-RPC receipt with web3's types where callers read them (logs left as sent)."""
    out = dict(raw)
    for key in _QUANTITIES:
        if isinstance(out.get(key), str):
            out[key] = int(out[key], 16)
    out["transactionHash"] = HexBytes(raw["transactionHash"])
    out["blockHash"] = HexBytes(raw["blockHash"])
    return out  # type: ignore[return-value]


def _in_doubt(
    pending: Sequence[PendingTx], when: str, more: Sequence[str] = ()
) -> TransactionOutcomeUnknownError:
    """The error of transactions sent to a node that then stopped answering (`more`: hashes
    already in doubt)."""
    hashes = tuple(p.hash.to_0x_hex() for p in pending) + tuple(more)
    return TransactionOutcomeUnknownError(
        f"the chain node stopped answering after {len(hashes)} transaction(s) were sent, "
        f"{when}: they may or may not be recorded ({', '.join(hashes)})",
        hashes,
    )
