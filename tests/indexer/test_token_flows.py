"""Money wallet to wallet: every payment-token Transfer and merchant approval is indexed, and
an upgraded database gets the rows its raw events already held."""

from __future__ import annotations

from collections import Counter

import pytest
from alembic import command
from sqlalchemy import func, select

from indexer.db import make_engine, migrate
from indexer.models import LoanEvent, MerchantApproval, TokenTransfer
from indexer.runner import index_once
from lending.loans.contracts import MERCHANT_REGISTRY, PAYMENT_TOKEN
from risk.flows import load_directory, load_transfers, why_moved
from tests.indexer._support import IndexedChain, dump
from tests.indexer.test_index_migrations import _move_to

pytestmark = pytest.mark.node

ZERO = bytes(20)


def test_indexed_transfers_add_up_to_every_balance(region_chain: IndexedChain, db_url: str) -> None:
    index_once(region_chain.client, db_url)
    token = region_chain.client.contract(PAYMENT_TOKEN)
    with make_engine(db_url).connect() as conn:
        rows = conn.execute(
            select(TokenTransfer.sender, TokenTransfer.recipient, TokenTransfer.amount_fen)
        ).all()
    net: Counter[bytes] = Counter()
    for sender, recipient, amount in rows:
        net[bytes(recipient)] += amount
        net[bytes(sender)] -= amount
    assert len(rows) == len(token.events.Transfer.get_logs(from_block=0))
    wallets = [w for w in net if w != ZERO]
    assert len(wallets) >= 5  # lender, escrows, merchants, farmers, settlement
    for wallet in wallets:
        address = region_chain.client.w3.to_checksum_address(wallet)
        assert net[wallet] == token.functions.balanceOf(address).call()
    assert -net[ZERO] == token.functions.totalSupply().call()  # mints come from 0x0


def test_merchant_approvals_are_indexed(region_chain: IndexedChain, db_url: str) -> None:
    index_once(region_chain.client, db_url)
    registry = region_chain.client.contract(MERCHANT_REGISTRY)
    approved = registry.events.MerchantApproved.get_logs(from_block=0)
    with make_engine(db_url).connect() as conn:
        rows = conn.execute(select(MerchantApproval).where(MerchantApproval.approved)).all()
    assert approved and len(rows) == len(approved)
    assert {bytes(r.merchant) for r in rows} == {
        bytes.fromhex(e.args.merchant[2:]) for e in approved
    }


def test_0009_projects_the_raw_events_an_older_database_kept(
    region_chain: IndexedChain, db_url: str
) -> None:
    index_once(region_chain.client, db_url)
    engine = make_engine(db_url)
    before = dump(engine)
    _move_to(engine, "0008", step=command.downgrade)
    migrate(engine)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(TokenTransfer)).scalar_one() > 0
    assert dump(engine) == before


def test_every_transfer_of_a_season_has_its_contract_reason(
    region_chain: IndexedChain, db_url: str
) -> None:
    index_once(region_chain.client, db_url)
    with make_engine(db_url).connect() as conn:
        transfers = load_transfers(conn)
        reasons = why_moved(conn, transfers)
        loan_kinds = Counter(
            k for (k,) in conn.execute(select(LoanEvent.kind).where(
                LoanEvent.kind.in_(("funded", "disbursed", "returned", "repaid"))  # type: ignore[attr-defined]
            ))
        )  # fmt: skip
    kinds = Counter(r.kind for r in reasons.values())
    assert set(reasons) == {t.key for t in transfers}
    assert kinds["direct"] == 0 and kinds["minted"] >= 1
    assert {k: kinds[k] for k in loan_kinds} == dict(loan_kinds)
    by_key = {t.key: t for t in transfers}
    for key, why in reasons.items():
        if why.kind == "disbursed":
            assert why.loan_id is not None and by_key[key].amount_fen > 0


def test_the_directory_names_followed_contracts_and_farmers(
    region_chain: IndexedChain, db_url: str
) -> None:
    index_once(region_chain.client, db_url)
    with make_engine(db_url).connect() as conn:
        directory = load_directory(conn)
    token = bytes.fromhex(region_chain.client.contract(PAYMENT_TOKEN).address[2:])
    assert directory.label(token).kind == "contract" and directory.is_contract(token)
    assert all(directory.label(e).kind == "escrow" for e in directory.escrows)
    farmer = next(f for f in region_chain.region.farmers if f.wallet is not None)
    (own,) = directory.wallets_of[farmer.farmer]
    assert directory.label(own).kind == "farmer" and not directory.is_contract(own)
