"""The money-flow rules on small worlds written straight into an indexer database (SQLite):
circular payments, one wallet behind several farmers, a lender's favourite merchant, a new
merchant's surge; and a legitimate season that none of them reports."""

from __future__ import annotations

import hashlib
from decimal import ROUND_HALF_EVEN, Decimal

import pytest
from sqlalchemy import Engine, insert

from indexer.models import (
    Farmer,
    FarmerChange,
    FarmerSettlement,
    Loan,
    MerchantApproval,
    TokenTransfer,
)
from risk.flows import WalletLabel
from risk.rules import DAY, Finding
from risk.scan import context, find

ZERO = bytes(20)
T0 = 1_750_000_000
YUAN = 100
FLOW_RULES = ["circular", "shared_wallet", "merchant_concentration", "new_merchant_surge"]
FERTILISER, TOOLS = b"fertiliser".ljust(32, b"\0"), b"tools".ljust(32, b"\0")


def addr(name: str) -> bytes:
    """A made-up address named for the test's reader."""
    return hashlib.sha256(name.encode()).digest()[:20]


class World:
    """Rows of the indexer's tables, written in chain order (one block per fact)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.block = 100
        self.next_loan = 1
        self.named: dict[bytes, WalletLabel] = {}

    def _add(self, model: type, **row: object) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(model).values(**row))  # type: ignore[arg-type]

    def _next_block(self) -> int:
        self.block += 1
        return self.block

    def farmer(self, name: str, wallet: bytes | None = None, at: int = T0) -> bytes:
        """A registered farmer (its wallet named after it unless given)."""
        fid = hashlib.sha256(b"farmer:" + name.encode()).digest()
        self._add(Farmer, farmer=fid, cooperative=addr("coop"), wallet=wallet or addr(name),
                  block_number=self._next_block(), log_index=0, block_timestamp=at)  # fmt: skip
        return fid

    def change_wallet(self, farmer: bytes, wallet: bytes) -> None:
        """FarmerWalletChanged."""
        self._add(FarmerChange, block_number=self._next_block(), log_index=0, farmer=farmer,
                  kind="wallet", wallet=wallet)  # fmt: skip

    def loan(self, farmer: bytes, lender: bytes, at: int, agent: bytes = ZERO) -> tuple[int, bytes]:
        """LoanIssued: (loan id, escrow)."""
        loan_id, self.next_loan = self.next_loan, self.next_loan + 1
        escrow = addr(f"escrow-{loan_id}")
        self._add(Loan, loan_id=loan_id, escrow=escrow, farmer=farmer, lender=lender,
                  borrower=addr("borrower-of-" + farmer.hex()), agent=agent,
                  principal_fen=1, block_number=self._next_block(), log_index=0,
                  block_timestamp=at)  # fmt: skip
        return loan_id, escrow

    def approve(self, merchant: bytes, at: int, category: bytes = FERTILISER) -> None:
        """MerchantApproved."""
        self._add(MerchantApproval, block_number=self._next_block(), log_index=0,
                  merchant=merchant, category=category, registrar=addr("registrar"),
                  approved=True, expires_at=2**62, block_timestamp=at)  # fmt: skip

    def pay(self, sender: bytes, recipient: bytes, fen: int, at: int, log_index: int = 0,
            block: int | None = None) -> None:  # fmt: skip
        """A token Transfer."""
        block = block or self._next_block()
        self._add(TokenTransfer, block_number=block, log_index=log_index, token=addr("eCNY"),
                  sender=sender, recipient=recipient, amount_fen=fen,
                  tx_hash=hashlib.sha256(f"{block}:{log_index}".encode()).digest(),
                  block_timestamp=at)  # fmt: skip

    def settle(self, farmer: bytes, wallet: bytes, paid_out: int, at: int, sale: int = 1) -> None:
        """FarmerShareSettled, then the settlement contract pays the farmer's wallet."""
        block = self._next_block()
        self._add(FarmerSettlement, block_number=block, log_index=1, sale_id=sale, farmer=farmer,
                  escrow=ZERO, share_fen=paid_out, repaid_fen=0, paid_out_fen=paid_out,
                  held_fen=0)  # fmt: skip
        self.pay(addr("settlement"), wallet, paid_out, at, log_index=2, block=block)

    def find(self, *names: str) -> list[Finding]:
        """The named rules' findings over the database as it is."""
        with self.engine.connect() as conn:
            return find(context(conn, named=self.named), list(names) or FLOW_RULES)


@pytest.fixture
def world(engine: Engine) -> World:
    """A world of its own for the test."""
    return World(engine)


def season(w: World, lender: bytes, farmers: int, merchants: list[bytes], start: int) -> None:
    """A legitimate season: the lender funds escrows, each escrow pays several merchants, the
    merchants restock from one supplier, farmers get paid by the settlement, repay their
    escrows, the escrows pay the lender back (and return what was unspent)."""
    for m in merchants:
        w.approve(m, start - 200 * DAY)
    w.pay(ZERO, lender, 10**10, start - DAY)
    for i in range(farmers):
        fid = w.farmer(f"season-farmer-{i}", at=start - 100 * DAY)
        wallet = addr(f"season-farmer-{i}")
        _, escrow = w.loan(fid, lender, start + i * 3600)
        principal = (2_000 + 733 * i) * YUAN
        w.pay(lender, escrow, principal, start + i * 3600 + 60)
        left = principal
        for j, m in enumerate(merchants[i % 2 :: 2] or merchants):
            part = principal * (3 + j) // 10
            w.pay(escrow, m, part, start + (i + j + 1) * DAY)
            left -= part
        w.pay(escrow, lender, left, start + 40 * DAY + i * 60)  # unspent returned
        w.settle(fid, wallet, (5_000 + 311 * i) * YUAN, start + 90 * DAY + i * 60, sale=i + 1)
        w.pay(wallet, escrow, principal + 97 * i, start + 100 * DAY + i * 60)
        w.pay(escrow, lender, principal + 97 * i, start + 100 * DAY + i * 60 + 30)
    for k, m in enumerate(merchants):
        w.pay(m, addr("wholesaler"), 10**7 + k * 12_345, start + 20 * DAY)


# ------------------------------------------------------------------------------------ season


@pytest.mark.parametrize("farmers", [6, 13])
def test_a_legitimate_season_gives_no_flow_finding(world: World, farmers: int) -> None:
    merchants = [addr(f"shop-{k}") for k in range(4)]
    season(world, addr("bank"), farmers, merchants, T0)
    assert world.find() == []


def test_patterns_stand_out_of_a_season_each_to_its_own_rule(world: World) -> None:
    season(world, addr("bank"), 7, [addr(f"shop-{k}") for k in range(4)], T0 - 60 * DAY)
    broker = kickbacks(world, 4, (2, 3), 3 * DAY)
    ring = [addr("season-farmer-1"), addr("cousin"), addr("season-farmer-5")]
    for i, wallet in enumerate(ring):
        world.pay(wallet, ring[(i + 1) % 3], 4_321 * YUAN, T0 + (i * 5 + 1) * DAY)
    found = world.find()
    assert sorted(f.rule for f in found) == ["circular", "shared_wallet"]
    assert {f.subject for f in found if f.rule == "shared_wallet"} == {f"wallet:0x{broker.hex()}"}
    (circle,) = (f for f in found if f.rule == "circular")
    assert len(circle.evidence.farmers) == 2 and len(circle.evidence.loans) == 2
    assert [f.key for f in world.find()] == [f.key for f in found]


# ---------------------------------------------------------------------------------- circular


@pytest.mark.parametrize(
    ("ring", "fen", "gaps_h"),
    [(2, 80_000 * YUAN, [30]), (3, 1_234 * YUAN, [2, 50]), (5, 9_999 * YUAN, [1, 24, 72, 200])],
)
def test_money_going_round_ordinary_wallets_is_one_finding(
    world: World, ring: int, fen: int, gaps_h: list[int]
) -> None:
    wallets = [addr(f"ring-{i}") for i in range(ring)]
    at = T0
    for i, wallet in enumerate(wallets):
        world.pay(wallet, wallets[(i + 1) % ring], fen - i * 1_000, at)
        at += gaps_h[i % len(gaps_h)] * 3600
    (found,) = world.find("circular")
    assert found.rule == "circular"
    assert found.subject == f"wallet:0x{wallets[0].hex()}"
    assert [h.sender for h in found.evidence.path] == [f"0x{w.hex()}" for w in wallets]
    assert found.evidence.path[-1].recipient == f"0x{wallets[0].hex()}"
    assert found.evidence.amounts_fen["circulated"] == fen - (ring - 1) * 1_000
    assert found.evidence.figures["hops"] == str(ring)
    assert found.explanation_zh and found.explanation_en
    assert [f.key for f in world.find("circular")] == [found.key]  # stable across scans


def test_a_ring_is_reported_once_whichever_wallet_it_starts_from(world: World) -> None:
    a, b, c = addr("a"), addr("b"), addr("c")
    world.pay(a, b, 5_000 * YUAN, T0)
    world.pay(b, c, 4_800 * YUAN, T0 + DAY)
    world.pay(c, a, 4_700 * YUAN, T0 + 2 * DAY)
    world.pay(a, b, 4_600 * YUAN, T0 + 3 * DAY)  # b -> c -> a -> b is the same money going on
    first = world.find("circular")
    assert len(first) == 1
    world.pay(b, c, 4_500 * YUAN, T0 + 4 * DAY)
    assert [f.key for f in world.find("circular")] == [first[0].key]
    world.pay(c, a, 4_400 * YUAN, T0 + 5 * DAY)  # a second round within the window
    (again,) = world.find("circular")
    assert again.key == first[0].key and again.evidence.figures["rounds"] == "2"
    assert len(again.evidence.transfers) == 3
    world.pay(a, b, 4_300 * YUAN, T0 + 20 * DAY)  # weeks later: another episode of the ring
    world.pay(b, c, 4_200 * YUAN, T0 + 21 * DAY)
    world.pay(c, a, 4_100 * YUAN, T0 + 22 * DAY)
    later = world.find("circular")
    assert len(later) == 2 and first[0].key in {f.key for f in later}


@pytest.mark.parametrize("days", [15, 40])
def test_a_ring_slower_than_the_window_is_not_reported(world: World, days: int) -> None:
    a, b, c = addr("a"), addr("b"), addr("c")
    world.pay(a, b, 5_000 * YUAN, T0)
    world.pay(b, c, 5_000 * YUAN, T0 + 3 * DAY)
    world.pay(c, a, 5_000 * YUAN, T0 + days * DAY)
    assert world.find("circular") == []


def test_a_ring_not_in_time_order_is_not_reported(world: World) -> None:
    a, b, c = addr("a"), addr("b"), addr("c")
    world.pay(a, b, 5_000 * YUAN, T0)  # every hop before the one it should follow
    world.pay(c, a, 5_000 * YUAN, T0 + DAY)
    world.pay(b, c, 5_000 * YUAN, T0 + 2 * DAY)
    assert world.find("circular") == []


@pytest.mark.parametrize(("out", "back"), [(900 * YUAN, 900 * YUAN), (8_000 * YUAN, 3_000 * YUAN)])
def test_small_rings_and_small_returns_are_not_reported(world: World, out: int, back: int) -> None:
    a, b = addr("a"), addr("b")
    world.pay(a, b, out, T0)
    world.pay(b, a, back, T0 + DAY)
    assert world.find("circular") == []


def test_a_ring_through_an_escrow_or_a_named_contract_is_not_reported(world: World) -> None:
    fid = world.farmer("f")
    _, escrow = world.loan(fid, addr("bank"), T0)
    world.pay(addr("bank"), escrow, 5_000 * YUAN, T0 + 1)
    world.pay(escrow, addr("bank"), 5_000 * YUAN, T0 + DAY)  # lender -> escrow -> lender
    pool = addr("pool")
    world.named[pool] = WalletLabel("contract", "合约 pool")
    world.pay(addr("f"), pool, 3_000 * YUAN, T0 + DAY)
    world.pay(pool, addr("x"), 3_000 * YUAN, T0 + 2 * DAY)
    world.pay(addr("x"), addr("f"), 3_000 * YUAN, T0 + 3 * DAY)
    assert world.find("circular") == []


def test_a_ring_through_a_merchant_is_high(world: World) -> None:
    shop = addr("shop")
    world.approve(shop, T0 - DAY)
    world.pay(addr("f"), shop, 6_000 * YUAN, T0)
    world.pay(shop, addr("f"), 5_500 * YUAN, T0 + 6 * DAY)
    (found,) = world.find("circular")
    assert found.severity == "high"


# ----------------------------------------------------------------------------- shared wallet


def test_a_wallet_registered_for_two_borrowers_is_reported(world: World) -> None:
    shared = addr("broker")
    one = world.farmer("one", shared)
    two = world.farmer("two")
    world.change_wallet(two, shared)
    world.farmer("three")  # a farmer of its own
    loans = [world.loan(one, addr("bank"), T0)[0], world.loan(two, addr("bank"), T0)[0]]
    (found,) = world.find("shared_wallet")
    assert found.subject == f"wallet:0x{shared.hex()}"
    assert set(found.evidence.farmers) == {"0x" + one.hex(), "0x" + two.hex()}
    assert list(found.evidence.loans) == loans
    assert found.severity == "high"
    assert [f.key for f in world.find("shared_wallet")] == [found.key]
    world.farmer("four", shared)  # the evidence grows, the alert stays one
    (again,) = world.find("shared_wallet")
    assert again.key == found.key and len(again.evidence.farmers) == 3


def test_a_family_wallet_without_loans_is_medium(world: World) -> None:
    shared = addr("family")
    world.farmer("husband", shared)
    world.farmer("wife", shared)
    (found,) = world.find("shared_wallet")
    assert found.severity == "medium"


def test_settlement_payouts_of_several_farmers_into_one_wallet(world: World) -> None:
    one, two = world.farmer("one"), world.farmer("two")
    sink = addr("sink")
    world.settle(one, sink, 3_210 * YUAN, T0)
    world.settle(two, sink, 777 * YUAN, T0 + 9 * DAY, sale=2)
    world.settle(two, addr("two"), 1_000 * YUAN, T0 + 10 * DAY, sale=3)  # its own wallet
    (found,) = world.find("shared_wallet")
    assert found.subject == f"wallet:0x{sink.hex()}"
    assert found.evidence.amounts_fen["paid_out"] == 3_987 * YUAN
    assert len(found.evidence.transfers) == 2


def kickbacks(w: World, borrowers: int, back_share: tuple[int, int], delay: int) -> bytes:
    """Loans of several farmers paid to merchants, who pass a share on to one wallet."""
    broker = addr("broker")
    shops = [addr(f"shop-{k}") for k in range(2)]
    for s in shops:
        w.approve(s, T0 - 90 * DAY)
    for i in range(borrowers):
        fid = w.farmer(f"ghost-{i}")
        _, escrow = w.loan(fid, addr("bank"), T0 + i * DAY)
        fen = (3_000 + 1_111 * i) * YUAN
        shop = shops[i % 2]
        w.pay(escrow, shop, fen, T0 + i * DAY + 3600)
        w.pay(shop, broker, fen * back_share[0] // back_share[1], T0 + i * DAY + delay)
    return broker


@pytest.mark.parametrize(("borrowers", "share", "delay"),
                         [(3, (9, 10), DAY), (5, (1, 5), 11 * DAY)])  # fmt: skip
def test_loan_money_of_several_borrowers_into_one_wallet(
    world: World, borrowers: int, share: tuple[int, int], delay: int
) -> None:
    broker = kickbacks(world, borrowers, share, delay)
    (found,) = world.find("shared_wallet")
    assert found.subject == f"wallet:0x{broker.hex()}"
    assert len(found.evidence.loans) == borrowers
    assert found.evidence.figures["borrowers_reached"] == str(borrowers)
    passed_on = sum((3_000 + 1_111 * i) * YUAN * share[0] // share[1] for i in range(borrowers))
    assert found.evidence.amounts_fen["loan_money_reached"] == passed_on
    assert found.severity == "high"


def test_two_borrowers_count_only_when_the_wallet_is_tied_to_them(world: World) -> None:
    broker = kickbacks(world, 2, (1, 2), 2 * DAY)
    assert world.find("shared_wallet") == []
    world.pay(broker, addr("ghost-1"), 500 * YUAN, T0 + 20 * DAY)  # pays a borrower's wallet
    assert [f.subject for f in world.find("shared_wallet")] == [f"wallet:0x{broker.hex()}"]


@pytest.mark.parametrize(("share", "delay"), [((1, 20), DAY), ((1, 2), 45 * DAY)])
def test_small_or_late_kickbacks_are_not_reported(
    world: World, share: tuple[int, int], delay: int
) -> None:
    kickbacks(world, 4, share, delay)
    assert world.find("shared_wallet") == []


# ------------------------------------------------------------------- merchant concentration


def lender_book(
    w: World, lender: bytes, loans: int, favourite_share: tuple[int, int], alternatives: int,
    start: int = T0, their_category: bytes = FERTILISER,
) -> bytes:  # fmt: skip
    """A lender's loans, each paying the favourite merchant its share and the rest elsewhere."""
    favourite = addr("favourite")
    others = [addr(f"other-{k}") for k in range(alternatives)]
    w.approve(favourite, start - 100 * DAY)
    for m in others:
        w.approve(m, start - 100 * DAY, their_category)
    for i in range(loans):
        fid = w.farmer(f"{lender.hex()}-{i}")
        _, escrow = w.loan(fid, lender, start + i * DAY)
        fen = (4_000 + 517 * i) * YUAN
        w.pay(lender, escrow, fen, start + i * DAY)
        to_fav = fen * favourite_share[0] // favourite_share[1]
        w.pay(escrow, favourite, to_fav, start + i * DAY + 3600)
        if to_fav < fen and others:
            w.pay(escrow, others[i % len(others)], fen - to_fav, start + i * DAY + 7200)
    return favourite


@pytest.mark.parametrize(("loans", "share"), [(5, (9, 10)), (10, (2, 3)), (24, (9, 10))])
def test_one_merchant_taking_most_of_a_lender_is_reported(
    world: World, loans: int, share: tuple[int, int]
) -> None:
    bank = addr("bank")
    favourite = lender_book(world, bank, loans, share, alternatives=2)
    (found,) = world.find("merchant_concentration")
    assert found.subject == f"wallet:0x{bank.hex()}"
    assert found.evidence.wallets == (f"0x{bank.hex()}", f"0x{favourite.hex()}")
    assert len(found.evidence.loans) == loans
    received = found.evidence.amounts_fen["merchant_received"]
    total = found.evidence.amounts_fen["lender_disbursed"]
    exact = (Decimal(received) / Decimal(total)).quantize(Decimal("0.0001"), ROUND_HALF_EVEN)
    assert found.evidence.figures["share"] == str(exact)
    assert received * 5 > total * 3
    assert found.severity == "medium"  # no other lender to compare with
    assert [f.key for f in world.find("merchant_concentration")] == [found.key]


def test_concentration_is_high_when_other_lenders_use_the_merchant_little(world: World) -> None:
    lender_book(world, addr("bank"), 12, (3, 4), alternatives=3)
    lender_book(world, addr("credit-union"), 12, (1, 5), alternatives=3, start=T0 + 50 * DAY)
    (found,) = world.find("merchant_concentration")
    assert found.subject == f"wallet:0x{addr('bank').hex()}"
    assert found.severity == "high"


@pytest.mark.parametrize(
    ("loans", "share", "alternatives"),
    [
        (3, (9, 10), 2),
        (3, (1, 1), 3),
        (3, (1, 1), 10),  # many approved shops do not make 3 loans significant
        (15, (1, 2), 2),  # half is not most
        (15, (1, 2), 3),
        (15, (1, 1), 1),
        (15, (9, 10), 0),
    ],  # 3 loans: chance could give one merchant all of them
)
def test_concentration_near_misses(
    world: World, loans: int, share: tuple[int, int], alternatives: int
) -> None:
    lender_book(world, addr("bank"), loans, share, alternatives)
    assert world.find("merchant_concentration") == []


def test_a_merchant_alone_in_its_category_is_a_blind_spot(world: World) -> None:
    lender_book(world, addr("bank"), 14, (4, 5), alternatives=3, their_category=TOOLS)
    assert world.find("merchant_concentration") == []


# -------------------------------------------------------------------------- new merchant surge


def market(w: World, established: list[int], start: int) -> None:
    """Established merchants (approved long before) with their inflow over 30 days from start."""
    for k, fen in enumerate(established):
        shop = addr(f"old-shop-{k}")
        w.approve(shop, start - 200 * DAY, TOOLS if k % 2 else FERTILISER)
        fid = w.farmer(f"old-{k}")
        _, escrow = w.loan(fid, addr("bank"), start)
        for part in range(3):
            w.pay(escrow, shop, fen // 3, start + (part * 7 + k) * DAY)


def newcomer(w: World, inflow: list[int], approved: int, delay: int = DAY) -> bytes:
    """A merchant approved at `approved`, paid these disbursements from `delay` on."""
    shop = addr("new-shop")
    w.approve(shop, approved)
    for i, fen in enumerate(inflow):
        fid = w.farmer(f"new-{i}")
        _, escrow = w.loan(fid, addr("bank"), approved)
        w.pay(escrow, shop, fen, approved + delay + i * 2 * DAY)
    return shop


@pytest.mark.parametrize(
    ("established", "inflow"),
    [
        ([20_000 * YUAN, 25_000 * YUAN, 30_000 * YUAN], [30_000 * YUAN] * 3),
        ([20_000 * YUAN, 25_000 * YUAN, 30_000 * YUAN], [1_000 * YUAN] * 4),  # many small loans
        ([500 * YUAN, 800 * YUAN, 1_000 * YUAN], [1_000 * YUAN, 900 * YUAN, 700 * YUAN]),
        ([5_000 * YUAN, 9_000 * YUAN, 12_000 * YUAN, 200_000 * YUAN], [18_000 * YUAN] * 3),
    ],
)
def test_a_new_merchant_far_above_the_established_is_reported(
    world: World, established: list[int], inflow: list[int]
) -> None:
    market(world, established, T0)
    shop = newcomer(world, inflow, T0)
    (found,) = world.find("new_merchant_surge")
    assert found.subject == f"wallet:0x{shop.hex()}"
    assert found.evidence.amounts_fen["first_window_inflow"] == sum(inflow)
    assert len(found.evidence.transfers) == len(inflow)
    assert [f.key for f in world.find("new_merchant_surge")] == [found.key]


@pytest.mark.parametrize(("loans", "p_value"), [(6, "0.016564"), (5, None)])
def test_improbably_many_small_loans_at_a_new_merchant(
    world: World, loans: int, p_value: str | None
) -> None:
    # established shops are each paid from 2 loans in those 30 days; 6 loans at the newcomer is
    # 3x that median, not more, yet a shop drawing loans at the median's rate gets 6 with
    # p = 0.017 (Poisson); 5 (p = 0.053) could be chance
    for k in range(3):
        shop = addr(f"old-shop-{k}")
        world.approve(shop, T0 - 200 * DAY, FERTILISER)
        for j in range(2):
            _, escrow = world.loan(world.farmer(f"old-{k}-{j}"), addr("bank"), T0)
            world.pay(escrow, shop, 30_000 * YUAN, T0 + (j * 7 + k) * DAY)
    newcomer(world, [1_000 * YUAN] * loans, T0)
    found = world.find("new_merchant_surge")
    if p_value is None:
        assert found == []
        return
    (surge,) = found
    assert surge.evidence.figures["loans_ratio_to_median"] == "3.0000"
    assert surge.evidence.figures["loans_poisson_p"] == p_value


@pytest.mark.parametrize(
    ("established", "inflow", "delay"),
    [
        ([20_000 * YUAN, 25_000 * YUAN, 30_000 * YUAN], [35_000 * YUAN, 35_000 * YUAN], DAY),
        ([500 * YUAN, 800 * YUAN, 1_000 * YUAN], [10_000 * YUAN, 9_000 * YUAN], DAY),  # 2 orders
        ([20_000 * YUAN, 25_000 * YUAN], [400_000 * YUAN], DAY),  # too few to compare with
        ([20_000 * YUAN, 25_000 * YUAN, 30_000 * YUAN], [400_000 * YUAN], 31 * DAY),  # later
    ],
)
def test_new_merchant_near_misses(
    world: World, established: list[int], inflow: list[int], delay: int
) -> None:
    market(world, established, T0)
    newcomer(world, inflow, T0, delay)
    assert world.find("new_merchant_surge") == []
