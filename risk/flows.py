"""Money followed wallet to wallet: indexed token transfers, who is behind each wallet, the graph.

Every eCNY movement is a `token_transfer` row (indexer); the escrow and settlement events say why
it moved. A wallet is known when the indexer saw it as a farmer's wallet, a loan's escrow, lender,
borrower or agent, an approved merchant, a contract it follows (the token, SaleSettlement...),
or when the caller names it (the service passes its
organisations; the deployment registry names the contracts). Everything else is "unknown".
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import networkx as nx
from sqlalchemy import func, or_, select
from sqlalchemy.engine import Connection

from indexer.models import (
    Farmer,
    FarmerChange,
    FarmerSettlement,
    IndexedContract,
    Loan,
    LoanEvent,
    MerchantApproval,
    RawEvent,
    TokenTransfer,
)

ZERO = bytes(20)


@dataclass(frozen=True)
class Transfer:
    """One indexed token transfer (amount in fen, time in chain seconds)."""

    block_number: int
    log_index: int
    sender: bytes
    recipient: bytes
    amount_fen: int
    tx_hash: bytes
    at: int

    @property
    def key(self) -> tuple[int, int]:
        """Chain order."""
        return (self.block_number, self.log_index)


@dataclass(frozen=True)
class WalletLabel:
    """Who is behind a wallet, as far as the chain (and the caller) says."""

    kind: str
    """farmer, escrow, lender, merchant, agent, organisation, contract, mint or unknown."""
    name: str
    farmers: tuple[bytes, ...] = ()
    loans: tuple[int, ...] = ()


@dataclass
class WalletDirectory:
    """Wallet -> label, and the links between wallets that the chain records."""

    labels: dict[bytes, WalletLabel] = field(default_factory=dict)
    farmers_of: dict[bytes, set[bytes]] = field(default_factory=lambda: defaultdict(set))
    """Wallet -> every farmer id it has been the registered wallet of."""
    wallets_of: dict[bytes, set[bytes]] = field(default_factory=lambda: defaultdict(set))
    """Farmer id -> every wallet it has had."""
    escrows: dict[bytes, int] = field(default_factory=dict)
    """Escrow address -> loan id."""
    merchants: set[bytes] = field(default_factory=set)

    def label(self, wallet: bytes) -> WalletLabel:
        """The label of a wallet (unknown when nobody named it)."""
        if wallet == ZERO:
            return WalletLabel("mint", "铸造 mint")
        return self.labels.get(wallet) or WalletLabel("unknown", "0x" + wallet.hex())

    def is_contract(self, wallet: bytes) -> bool:
        """Escrows, the mint and named contracts: money there moves only by contract rules."""
        return wallet == ZERO or wallet in self.escrows or self.label(wallet).kind == "contract"


def load_transfers(conn: Connection) -> list[Transfer]:
    """Every indexed transfer, in chain order."""
    query = select(
        TokenTransfer.block_number, TokenTransfer.log_index, TokenTransfer.sender,
        TokenTransfer.recipient, TokenTransfer.amount_fen, TokenTransfer.tx_hash,
        TokenTransfer.block_timestamp,
    ).order_by(TokenTransfer.block_number, TokenTransfer.log_index)  # fmt: skip
    return [
        Transfer(b, i, bytes(s), bytes(r), a, bytes(t), at)
        for b, i, s, r, a, t, at in conn.execute(query)
    ]


def load_directory(conn: Connection, named: Mapping[bytes, WalletLabel] = {}) -> WalletDirectory:
    """Every wallet the indexer can name, then the caller's names (organisations, contracts)."""
    found = WalletDirectory()
    for farmer, wallet in _farmer_wallets(conn):
        found.farmers_of[wallet].add(farmer)
        found.wallets_of[farmer].add(wallet)
    for wallet, farmers in found.farmers_of.items():
        found.labels[wallet] = WalletLabel("farmer", _farmer_name(farmers), tuple(sorted(farmers)))
    _add_loans(conn, found)
    for address, name in conn.execute(select(IndexedContract.address, IndexedContract.name)):
        if bytes(address) not in found.escrows:  # escrows keep their loan's label
            found.labels[bytes(address)] = WalletLabel("contract", f"合约 contract {name}")
    for (merchant,) in conn.execute(select(MerchantApproval.merchant).distinct()):
        found.merchants.add(bytes(merchant))
        found.labels.setdefault(bytes(merchant), WalletLabel("merchant", "商户 merchant"))
    for wallet, label in named.items():
        old = found.labels.get(wallet)
        keep = old.farmers if old else ()
        found.labels[wallet] = WalletLabel(label.kind, label.name, keep or label.farmers,
                                           old.loans if old else label.loans)  # fmt: skip
    return found


def _farmer_wallets(conn: Connection) -> Iterator[tuple[bytes, bytes]]:
    """(farmer, wallet) for every wallet a farmer has had."""
    for farmer, wallet in conn.execute(select(Farmer.farmer, Farmer.wallet)):
        if wallet is not None and bytes(wallet) != ZERO:
            yield bytes(farmer), bytes(wallet)
    changes = select(FarmerChange.farmer, FarmerChange.wallet).where(
        FarmerChange.wallet.is_not(None)  # type: ignore[union-attr]
    )
    for farmer, wallet in conn.execute(changes):
        if bytes(wallet) != ZERO:
            yield bytes(farmer), bytes(wallet)


def _farmer_name(farmers: Iterable[bytes]) -> str:
    """A farmer wallet's label: the pseudonymous ids, shortened."""
    return "茶农 farmer " + ", ".join("0x" + f.hex()[:8] for f in sorted(farmers))


def _add_loans(conn: Connection, found: WalletDirectory) -> None:
    """Escrows, lenders and agents from LoanIssued."""
    rows = conn.execute(select(Loan.loan_id, Loan.escrow, Loan.lender, Loan.agent, Loan.farmer))
    for loan_id, escrow, lender, agent, farmer in rows:
        escrow, lender, agent = bytes(escrow), bytes(lender), bytes(agent)
        found.escrows[escrow] = loan_id
        found.labels[escrow] = WalletLabel("escrow", f"贷款托管 escrow #{loan_id}",
                                           (bytes(farmer),), (loan_id,))  # fmt: skip
        found.labels.setdefault(lender, WalletLabel("lender", "贷款机构 lender"))
        if agent != ZERO:
            found.labels.setdefault(agent, WalletLabel("agent", "代理 agent"))


def flow_graph(transfers: Iterable[Transfer]) -> nx.MultiDiGraph:
    """Wallets as nodes, each transfer an edge (key: chain order) carrying amount, time, tx."""
    graph = nx.MultiDiGraph()
    for t in transfers:
        graph.add_edge(t.sender, t.recipient, key=t.key, transfer=t)
    return graph


def onward_paths(
    graph: nx.MultiDiGraph,
    first: Transfer,
    targets: set[bytes] | None,
    within: int,
    max_hops: int,
    skip: frozenset[bytes] = frozenset(),
    cap: int | None = None,
) -> list[list[Transfer]]:
    """Paths of transfers that start with `first` and reach a target (any wallet when None)
    within `within` seconds and `max_hops` transfers, each hop after the one before (money
    cannot leave before it arrives), never through a wallet in `skip`, no hop above `cap`."""
    if targets is not None and first.recipient in targets:
        return [[first]]
    start, end = first.recipient, first.at + within

    def keep(u: bytes, v: bytes, k: tuple[int, int]) -> bool:
        t: Transfer = graph[u][v][k]["transfer"]
        return first.key < t.key and t.at <= end and (cap is None or t.amount_fen <= cap)

    if max_hops < 2 or start not in graph:
        return []
    view = nx.subgraph_view(graph, filter_node=lambda n: n not in skip or n == start,
                            filter_edge=keep)  # fmt: skip
    near = set(nx.dfs_preorder_nodes(view, start, depth_limit=max_hops - 1)) - {start}
    ends = near if targets is None else near & targets
    if not ends:
        return []
    found: list[list[Transfer]] = []
    for edges in nx.all_simple_edge_paths(view, start, ends, cutoff=max_hops - 1):
        path = [first, *(view[u][v][k]["transfer"] for u, v, k in edges)]
        if _time_respecting(path):
            found.append(path)
    return found


def _time_respecting(path: list[Transfer]) -> bool:
    """Each transfer at or after the previous one in chain order."""
    return all(a.key < b.key for a, b in pairwise(path))


@dataclass(frozen=True)
class Why:
    """Why a transfer happened, from the contract events of its transaction."""

    kind: str
    """minted, funded, disbursed, returned, repaid, sale_in, share_out, share_repaid, claimed,
    or direct (no contract event explains it: a plain wallet-to-wallet payment)."""
    zh: str
    en: str
    loan_id: int | None = None


WHY: dict[str, tuple[str, str]] = {
    "minted": ("数字人民币发行", "minted"),
    "funded": ("放款入托管", "loan funded into its escrow"),
    "disbursed": ("定向支付给商户", "directed payment to a merchant"),
    "returned": ("未用资金退回", "unspent money returned to the lender"),
    "repaid": ("还款", "loan repayment"),
    "sale_in": ("销售货款入分账合约", "sale proceeds paid in for settlement"),
    "share_out": ("销售分账给茶农", "farmer's share of a sale paid out"),
    "share_repaid": ("销售分账还款", "farmer's share of a sale repaying a loan"),
    "claimed": ("领取暂存货款", "held proceeds claimed"),
    "direct": ("直接转账", "direct transfer"),
}
_LOAN_KINDS = ("funded", "disbursed", "returned", "repaid")


def why_moved(conn: Connection, transfers: Sequence[Transfer]) -> dict[tuple[int, int], Why]:
    """Each transfer's reason: the contract event of its transaction with its amount and party."""
    events = _tx_events(conn, {t.tx_hash for t in transfers})
    found: dict[tuple[int, int], Why] = {}
    for t in transfers:
        kind, loan_id = _match(t, events.get(t.tx_hash, []))
        found[t.key] = Why(kind, *WHY[kind], loan_id=loan_id)
    return found


@dataclass
class _TxEvent:
    """A non-Transfer event of a transaction, with what its indexed row says."""

    name: str
    emitter: bytes
    kind: str | None = None
    amount: int | None = None
    party: bytes | None = None
    loan_id: int | None = None
    repaid: int | None = None
    used: set[str] = field(default_factory=set)
    """Kinds already explained: a sale share explains its repayment and its payout, once each;
    any other event explains one transfer."""


def _tx_events(conn: Connection, txs: set[bytes]) -> dict[bytes, list[_TxEvent]]:
    """The explaining events of these transactions, with their loan and settlement rows."""
    if not txs:
        return {}
    raw = conn.execute(
        select(RawEvent.tx_hash, RawEvent.block_number, RawEvent.log_index, RawEvent.event,
               RawEvent.address)
        .where(RawEvent.tx_hash.in_(list(txs)), RawEvent.event != "Transfer")  # type: ignore[attr-defined]
        .order_by(RawEvent.block_number, RawEvent.log_index)
    ).all()  # fmt: skip
    keys = [(b, i) for _t, b, i, _e, _a in raw]
    loans = _by_key(conn, LoanEvent, keys, LoanEvent.kind, LoanEvent.amount_fen, LoanEvent.party,
                    LoanEvent.loan_id)  # fmt: skip
    shares = _by_key(conn, FarmerSettlement, keys, FarmerSettlement.paid_out_fen,
                     FarmerSettlement.repaid_fen)  # fmt: skip
    found: dict[bytes, list[_TxEvent]] = defaultdict(list)
    for tx, block, index, name, emitter in raw:
        event = _TxEvent(name or "", bytes(emitter))
        if (row := loans.get((block, index))) is not None and row[0] in _LOAN_KINDS:
            event.kind, event.amount, event.loan_id = row[0], row[1], row[3]
            event.party = bytes(row[2]) if row[2] is not None else None
        elif (row := shares.get((block, index))) is not None:
            event.kind, event.amount, event.repaid = "share", row[0], row[1]
        found[bytes(tx)].append(event)
    return found


def _by_key(
    conn: Connection, table: Any, keys: list[tuple[int, int]], *columns: Any
) -> dict[tuple[int, int], tuple[Any, ...]]:
    """Rows of a table keyed by (block_number, log_index), for the given keys."""
    if not keys:
        return {}
    blocks = sorted({b for b, _ in keys})
    rows = conn.execute(
        select(table.block_number, table.log_index, *columns).where(table.block_number.in_(blocks))
    )
    wanted = set(keys)
    return {(r[0], r[1]): tuple(r[2:]) for r in rows if (r[0], r[1]) in wanted}


def _match(t: Transfer, events: list[_TxEvent]) -> tuple[str, int | None]:
    """The first unused event of the transaction that accounts for this transfer."""
    for e in events:
        kind = _accounts_for(t, e)
        if kind is not None and kind not in e.used and "*" not in e.used:
            e.used.add(kind if e.kind == "share" else "*")
            return kind, e.loan_id
    return "direct", None


def _accounts_for(t: Transfer, e: _TxEvent) -> str | None:
    """The reason kind when event `e` explains transfer `t`."""
    if e.name == "PaymentTokenMinted" and t.sender == ZERO:
        return "minted"
    if e.kind in _LOAN_KINDS and e.amount == t.amount_fen and e.party in (t.sender, t.recipient):
        return e.kind
    if e.kind == "share" and t.sender == e.emitter:
        if e.amount == t.amount_fen:
            return "share_out"
        if e.repaid == t.amount_fen:
            return "share_repaid"
    if e.name == "SaleSettled" and t.recipient == e.emitter:
        return "sale_in"
    if e.name == "HeldProceedsClaimed" and t.sender == e.emitter:
        return "claimed"
    return None


@dataclass(frozen=True)
class WalletPage:
    """A page of one wallet's transfers (newest first) and its totals over all of them."""

    transfers: list[Transfer]
    total: int
    in_fen: int
    out_fen: int


def wallet_transfers(conn: Connection, wallet: bytes, offset: int, limit: int) -> WalletPage:
    """One wallet's transfers in and out, newest first, with its totals."""
    t = TokenTransfer
    mine = or_(t.sender == wallet, t.recipient == wallet)
    rows = conn.execute(
        select(t.block_number, t.log_index, t.sender, t.recipient, t.amount_fen, t.tx_hash,
               t.block_timestamp)
        .where(mine)
        .order_by(t.block_number.desc(), t.log_index.desc())  # type: ignore[attr-defined]
        .offset(offset).limit(limit)
    )  # fmt: skip
    page = [Transfer(b, i, bytes(s), bytes(r), a, bytes(h), at) for b, i, s, r, a, h, at in rows]
    total = conn.execute(select(func.count()).select_from(t).where(mine)).scalar_one()
    fen_in = conn.execute(select(func.coalesce(func.sum(t.amount_fen), 0))
                          .where(t.recipient == wallet)).scalar_one()  # fmt: skip
    fen_out = conn.execute(select(func.coalesce(func.sum(t.amount_fen), 0))
                           .where(t.sender == wallet)).scalar_one()  # fmt: skip
    return WalletPage(page, total, int(fen_in), int(fen_out))
