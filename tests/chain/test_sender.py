"""Sender: local nonces, pipelining, retries without double-sends, decoded reverts."""

import io
import json
import shutil
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from hexbytes import HexBytes
from web3 import HTTPProvider, Web3

from chain.errors import (
    ContractRevertError,
    TransactionError,
    TransactionOutcomeUnknownError,
    revert_class,
)
from chain.rpc import JsonRpc
from chain.sender import RECEIPT_BATCH, Sender
from tests._fixtures import client_for, needs_node
from tests.chain.test_nodes import deploy_token

MINT_GAS = 120_000


@needs_node()
@pytest.mark.parametrize("backend", ["anvil", "ganache"])
def test_200_transactions_pipelined_before_any_receipt(backend, request, tmp_path):
    client = client_for(request.getfixturevalue(f"{backend}_node"), tmp_path)
    token = deploy_token(client)
    sender = client.sender(0)
    farmer = client.accounts[5].address
    start_nonce = client.w3.eth.get_transaction_count(sender.address)
    calls = [token.functions.mint(farmer, 1) for _ in range(200)]
    pending = sender.send_many(calls, gas=MINT_GAS)  # nothing awaited yet
    assert [p.nonce for p in pending] == list(range(start_nonce, start_nonce + 200))
    receipts = sender.wait(pending)
    assert all(r["status"] == 1 for r in receipts)
    assert token.functions.balanceOf(farmer).call() == 200
    assert client.w3.eth.get_transaction_count(sender.address) == start_nonce + 200
    blocks = {r["blockNumber"] for r in receipts}
    if backend == "anvil":  # mined together: 125 to a block at the 15 M gas target, not 200
        assert len(blocks) == 2
        base_fees = [client.w3.eth.get_block(b)["baseFeePerGas"] for b in sorted(blocks)]
        assert base_fees[1] <= base_fees[0]  # blocks at the target never raise the base fee
        alone = sender.transact(token.functions.mint(farmer, 1), gas=MINT_GAS)
        assert alone["blockNumber"] == max(blocks) + 1  # automine is back for single sends
    else:  # ganache mines each at once
        assert len(blocks) == 200


def test_revert_is_decoded_with_arguments(any_chain):
    token = deploy_token(any_chain)
    holder = any_chain.accounts[1].address
    any_chain.sender(0).transact(token.functions.mint(holder, 100))
    with pytest.raises(revert_class("ERC20InsufficientBalance")) as exc:
        any_chain.sender(1).transact(token.functions.transfer(any_chain.accounts[2].address, 1000))
    assert exc.value.args_by_name == {"sender": holder, "balance": 100, "needed": 1000}
    assert "ERC20InsufficientBalance(sender=0x" in str(exc.value)


def test_revert_in_mined_transaction_is_decoded(any_chain):
    """With gas given there is no estimate: the failure is found from the receipt."""
    token = deploy_token(any_chain)
    stranger = any_chain.accounts[2]
    with pytest.raises(revert_class("AccessControlUnauthorizedAccount")) as exc:
        any_chain.sender(2).transact(token.functions.mint(stranger.address, 5), gas=MINT_GAS)
    assert exc.value.args_by_name["account"] == stranger.address
    # the failed transaction consumed its nonce; the next one must still go through
    any_chain.sender(0).transact(token.functions.mint(stranger.address, 5))


def test_own_custom_error_without_arguments(embedded):
    token = deploy_token(embedded)
    with pytest.raises(ContractRevertError) as exc:
        embedded.sender(0).transact(token.functions.mint(embedded.accounts[1].address, 0))
    assert exc.value.name == "PaymentTokenZeroAmount"
    assert exc.value.args_by_name == {}


class FlakyProxy:
    """Forwards JSON-RPC to a node, but loses the first `eth_sendRawTransaction` exchange.

    mode "request": the request never reaches the node (connection dropped first).
    mode "response": the node executes it, then the reply is lost (a timeout, as seen
    by the client) - the case where a blind resend would double-send.
    """

    def __init__(self, upstream: str, mode: str) -> None:
        self.upstream, self.mode, self.tripped, self.sends = upstream, mode, False, 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                is_send = json.loads(body).get("method") == "eth_sendRawTransaction"
                if is_send:
                    proxy.sends += 1
                lose = is_send and not proxy.tripped
                if lose and proxy.mode == "request":
                    proxy.tripped = True
                    self.close_connection = True
                    return
                req = urllib.request.Request(
                    proxy.upstream, body, {"Content-Type": "application/json"}
                )
                with urllib.request.urlopen(req) as resp:
                    reply = resp.read()
                if lose:
                    proxy.tripped = True
                    self.close_connection = True
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@needs_node()
@pytest.mark.parametrize("mode", ["request", "response"])
def test_lost_send_is_retried_exactly_once(mode, anvil_node, tmp_path):
    client = client_for(anvil_node, tmp_path)
    token = deploy_token(client)
    proxy = FlakyProxy(anvil_node.url, mode)
    try:
        # web3's own retry is off so that the sender's logic is what is tested
        w3 = Web3(HTTPProvider(proxy.url, exception_retry_configuration=None))
        sender = Sender(w3, client.accounts[0], client.decoder, backoff=0.01)
        farmer = client.accounts[6].address
        before = client.w3.eth.get_transaction_count(sender.address)
        receipt = sender.transact(token.functions.mint(farmer, 42), gas=MINT_GAS)
        assert receipt["status"] == 1 and proxy.tripped
        sender.transact(token.functions.mint(farmer, 1), gas=MINT_GAS)
    finally:
        proxy.close()
    assert token.functions.balanceOf(farmer).call() == 43, "minted exactly once each"
    assert client.w3.eth.get_transaction_count(sender.address) == before + 2
    # a lost reply is recognised by hash: the tx is not submitted again
    assert proxy.sends == (3 if mode == "request" else 2)


def test_unreachable_node_gives_up_after_bounded_retries(embedded, tmp_path):
    from chain.nodes import free_port

    url = f"http://127.0.0.1:{free_port()}"
    w3 = Web3(HTTPProvider(url, exception_retry_configuration=None))
    for rpc in (JsonRpc(url, timeout=1.0), None):  # raw JSON-RPC, and web3's path
        sender = Sender.__new__(Sender)
        Sender.__init__  # noqa: B018 - constructing needs a chain id; build a sender by hand
        sender.w3, sender._account, sender.decoder = w3, embedded.accounts[0], embedded.decoder
        sender._retries, sender._backoff, sender._rpc = 2, 0.001, rpc
        with pytest.raises(TransactionError, match="after 3 attempts"):
            sender._submit(b"\x01", embedded.w3.keccak(b"x"), 0)


class DyingProxy(FlakyProxy):
    """Forwards JSON-RPC until it has passed on `sends` eth_sendRawTransaction calls, then stops
    answering (the node going down between a transaction's submission and its receipt)."""

    def __init__(self, upstream: str, sends: int = 1) -> None:
        super().__init__(upstream, "none")
        self.sends_left = sends
        self.tripped = True  # FlakyProxy loses nothing
        handler = self.server.RequestHandlerClass
        forward = handler.do_POST
        proxy = self

        def do_post(request):
            if proxy.dead:
                request.close_connection = True
                return
            body = request.rfile.read(int(request.headers["Content-Length"]))
            request.rfile = io.BytesIO(body)
            request.headers.replace_header("Content-Length", str(len(body)))
            forward(request)
            if json.loads(body).get("method") == "eth_sendRawTransaction":
                proxy.sends_left -= 1
                proxy.dead = proxy.sends_left == 0

        self.dead = False
        handler.do_POST = do_post


@needs_node()
def test_a_node_lost_after_the_send_leaves_the_outcome_in_doubt_not_denied(anvil_node, tmp_path):
    client = client_for(anvil_node, tmp_path)
    token = deploy_token(client)
    farmer = client.accounts[7].address
    proxy = DyingProxy(anvil_node.url)
    try:
        w3 = Web3(HTTPProvider(proxy.url, exception_retry_configuration=None))
        sender = Sender(w3, client.accounts[0], client.decoder, backoff=0.01)
        with pytest.raises(TransactionOutcomeUnknownError) as exc:
            sender.transact(token.functions.mint(farmer, 5), gas=MINT_GAS)
    finally:
        proxy.close()
    (tx_hash,) = exc.value.hashes
    assert "may or may not be recorded" in str(exc.value)
    # the node did record it: a caller told "nothing was written" would have been misled
    # (waited for: a busy anvil answers the send before it has mined the block)
    receipt = client.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60, poll_latency=0.05)
    assert receipt["status"] == 1
    assert token.functions.balanceOf(farmer).call() == 5


@needs_node()
def test_a_pipeline_cut_off_in_a_later_block_names_every_transaction_sent(anvil_node, tmp_path):
    client = client_for(anvil_node, tmp_path)
    token = deploy_token(client)
    farmer = client.accounts[8].address
    proxy = DyingProxy(anvil_node.url, sends=3)  # two in the first block, one in the second
    try:
        w3 = Web3(HTTPProvider(proxy.url, exception_retry_configuration=None))
        sender = Sender(w3, client.accounts[0], client.decoder, backoff=0.01)
        calls = [token.functions.mint(farmer, 1) for _ in range(4)]
        with pytest.raises(TransactionOutcomeUnknownError) as exc:
            sender.send_many(calls, gas=7_000_000)  # 2 to a block at the 15 M gas target
    finally:
        proxy.close()
        # the node kept automine off when its caller lost it: what a restart would undo
        client.w3.provider.make_request("evm_setAutomine", [True])
        client.w3.provider.make_request("evm_mine", [])
    assert len(exc.value.hashes) == 3  # the first block's two are named with the third
    receipts = [client.w3.eth.get_transaction_receipt(h) for h in exc.value.hashes]
    assert all(r["status"] == 1 for r in receipts)
    assert token.functions.balanceOf(farmer).call() == 3


@needs_node()
def test_two_senders_on_one_key_take_fresh_nonces(anvil_node, tmp_path):
    """Two processes signing with one key (two services): the one whose nonce was taken
    signs again with the node's next nonce instead of failing."""
    client = client_for(anvil_node, tmp_path)
    token = deploy_token(client)
    account, farmer = client.accounts[0], client.accounts[7].address
    first = Sender(client.w3, account, client.decoder)
    second = Sender(Web3(HTTPProvider(anvil_node.url)), account, client.decoder)
    before = client.w3.eth.get_transaction_count(account.address)
    first.transact(token.functions.mint(farmer, 1), gas=MINT_GAS)
    second.transact(token.functions.mint(farmer, 2), gas=MINT_GAS)  # caches the next nonce
    for _ in range(3):  # each now holds a nonce the other used: every send must retry
        first.transact(token.functions.mint(farmer, 10), gas=MINT_GAS)
        second.transact(token.functions.mint(farmer, 20), gas=MINT_GAS)
    assert token.functions.balanceOf(farmer).call() == 3 + 3 * 30, "each mint ran exactly once"
    assert client.w3.eth.get_transaction_count(account.address) == before + 8


@pytest.mark.parametrize("backend", ["embedded", "anvil"])
def test_settle_returns_receipts_in_order_and_a_failed_ones_error_in_its_place(
    backend, request, tmp_path
):
    """Over HTTP the receipts come in JSON-RPC batches (more than one batch here); the
    in-process EVM takes web3's path; both give ints, the hash as HexBytes, decoded errors."""
    if backend == "embedded":
        client = client_for("embedded", tmp_path)
    else:
        if shutil.which("npx") is None:
            pytest.skip("Node.js not installed")
        client = client_for(request.getfixturevalue("anvil_node"), tmp_path)
    token = deploy_token(client)
    sender, farmer = client.sender(0), client.accounts[7].address
    calls = [token.functions.mint(farmer, 0 if i == 61 else 1) for i in range(RECEIPT_BATCH + 30)]
    pending = sender.send_many(calls, gas=MINT_GAS)
    settled = sender.settle(pending)
    assert len(settled) == len(calls)
    failed = settled.pop(61)
    assert isinstance(failed, ContractRevertError) and failed.name == "PaymentTokenZeroAmount"
    assert all(r["status"] == 1 and isinstance(r["gasUsed"], int) for r in settled)
    mined = [p for i, p in enumerate(pending) if i != 61]
    assert [r["transactionHash"] for r in settled] == [p.hash for p in mined]
    assert all(isinstance(r["transactionHash"], HexBytes) for r in settled)
    assert token.functions.balanceOf(farmer).call() == len(calls) - 1


@needs_node()
def test_settle_after_the_node_is_lost_leaves_every_unseen_transaction_in_doubt(
    anvil_node, tmp_path
):
    client = client_for(anvil_node, tmp_path)
    token = deploy_token(client)
    farmer = client.accounts[7].address
    proxy = DyingProxy(anvil_node.url)
    try:
        w3 = Web3(HTTPProvider(proxy.url, exception_retry_configuration=None))
        sender = Sender(w3, client.accounts[0], client.decoder, backoff=0.01)
        pending = sender.send_many([token.functions.mint(farmer, 5)], gas=MINT_GAS)
        with pytest.raises(TransactionOutcomeUnknownError) as exc:
            sender.settle(pending)
    finally:
        proxy.close()
    assert exc.value.hashes == (pending[0].hash.to_0x_hex(),)
    assert client.w3.eth.get_transaction_receipt(pending[0].hash)["status"] == 1
