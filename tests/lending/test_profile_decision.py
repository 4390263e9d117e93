"""End to end: chain events -> indexer -> FarmerProfile -> consent-gated credit decision -> replay.

A demo season is recorded on an anvil of this module's own (the indexer reads raw logs over
JSON-RPC, which the embedded EVM does not serve), one farmer grants a lender consent in the
ConsentRegistry, the chain is indexed into SQLite, and `decide` reads the profile and the
consent from the index only.
"""

from datetime import UTC, datetime

import pytest
from rich.console import Console
from sqlmodel import create_engine

from indexer.db import make_engine
from indexer.profiles import FarmerProfile
from indexer.runner import index_once
from lending.credit.access import AccessOutcome, MemoryAccessLog
from lending.credit.decision import decide
from lending.credit.features import profile_fields, snapshot_from_profile
from lending.credit.policy import Outcome
from lending.credit.profiles import IndexedConsentChecker, IndexedProfileReader
from lending.credit.replay import replay
from lending.credit.store import CreditStore, create_tables
from lending.errors import (
    ConsentCheckError,
    ConsentRequiredError,
    ProfileDataError,
    ProfileNotFoundError,
)
from tealedger.demo.season import run_season
from tealedger.system import deploy_system
from tests._fixtures import client_for, demo_wallet, needs_node, start_node
from traceability.consent import ConsentService

pytestmark = needs_node()

LENDER_INDEX = 3
DAY = 86_400


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    """A demo season on chain, consent for farmer 0 only, indexed into SQLite."""
    tmp = tmp_path_factory.mktemp("profile-decision")
    node = start_node("anvil", tmp / "anvil")
    try:
        yield _record_and_index(node, tmp)
    finally:
        node.stop()


def _record_and_index(node, tmp):
    client = client_for(node, tmp / "chain")
    client.settings.data_dir.mkdir(parents=True, exist_ok=True)
    deploy_system(client)
    region, _ = run_season(client, farmers=6, seed=3, console=Console(quiet=True))
    lender = client.accounts[LENDER_INDEX].address
    farmer = region.farmer_ids[0]
    now = client.w3.eth.get_block("latest")["timestamp"]
    ConsentService(client).grant(demo_wallet(client, farmer), farmer, lender, now + 90 * DAY)
    url = f"sqlite:///{tmp / 'index.db'}"
    index_once(client, url)
    return {
        "url": url,
        "lender": lender,
        "consenting": "0x" + farmer.hex(),
        "other": "0x" + region.farmer_ids[1].hex(),
        "tmp": tmp,
    }


def test_indexed_profile_maps_to_features(indexed):
    profile = IndexedProfileReader(indexed["url"]).read_profile(indexed["consenting"])
    assert isinstance(profile, FarmerProfile)
    assert profile.valid_at.timestamp is not None
    fields = profile_fields(profile)
    assert fields["farmer_id"] == indexed["consenting"]
    assert fields["block_hash"] == profile.valid_at.block_hash
    assert fields["plot_area_centi_mu"] == int(profile.total_area_mu * 100)
    assert len(fields["seasonal_sale_income_fen"]) == 4
    assert sum(s.sale_income_fen for s in profile.seasons) >= sum(
        fields["seasonal_sale_income_fen"]
    )
    snapshot = snapshot_from_profile(profile)
    # The JSON form of the profile (as an API would send it) gives the same snapshot.
    assert snapshot_from_profile(profile.model_dump(mode="json")) == snapshot
    assert snapshot.block_number == profile.valid_at.block_number


def test_profile_without_block_timestamp_is_refused(indexed):
    profile = IndexedProfileReader(indexed["url"]).read_profile(indexed["consenting"])
    broken = profile.model_copy(
        update={"valid_at": profile.valid_at.model_copy(update={"timestamp": None})}
    )
    with pytest.raises(ProfileDataError) as info:
        snapshot_from_profile(broken)
    assert info.value.field == "valid_at.timestamp"


def test_decision_for_the_consenting_farmer_replays(indexed):
    engine = create_engine(f"sqlite:///{indexed['tmp'] / 'credit.db'}")
    create_tables(engine)
    store = CreditStore(engine)
    reader = IndexedProfileReader(indexed["url"])
    log = MemoryAccessLog()
    record = decide(
        indexed["consenting"], indexed["lender"],
        profiles=reader, consent=IndexedConsentChecker(indexed["url"]), access_log=log,
        store=store,
    )  # fmt: skip
    decision = record.decision
    profile = reader.read_profile(indexed["consenting"])
    assert decision.outcome in set(Outcome)
    assert decision.reasons or decision.outcome is Outcome.APPROVE
    assert decision.profile_block_hash == profile.valid_at.block_hash
    assert decision.profile_block_number == profile.valid_at.block_number
    assert [e.outcome for e in log.entries] == [AccessOutcome.READ]
    assert log.entries[0].block_hash == profile.valid_at.block_hash

    stored = store.get_decision(record.decision_id)
    assert stored.decision.profile_block_hash == profile.valid_at.block_hash
    result = replay(stored, profile=profile)
    assert result.matches, result.differences
    assert result.stored_hash == result.recomputed_hash


def test_farmer_without_consent_is_refused(indexed):
    log = MemoryAccessLog()
    with pytest.raises(ConsentRequiredError):
        decide(
            indexed["other"], indexed["lender"],
            profiles=IndexedProfileReader(indexed["url"]),
            consent=IndexedConsentChecker(indexed["url"]), access_log=log,
        )  # fmt: skip
    assert [e.outcome for e in log.entries] == [AccessOutcome.REFUSED_NO_CONSENT]


def test_consent_expires_by_wall_clock_and_fails_closed(indexed):
    later = datetime(2100, 1, 1, tzinfo=UTC).timestamp()
    expired = IndexedConsentChecker(indexed["url"], clock=lambda: later)
    assert not expired.has_consent(indexed["consenting"], indexed["lender"])
    missing = IndexedConsentChecker(make_engine(f"sqlite:///{indexed['tmp'] / 'none.db'}"))
    with pytest.raises(ConsentCheckError):
        missing.has_consent(indexed["consenting"], indexed["lender"])


def test_unknown_farmer_is_not_found(indexed):
    with pytest.raises(ProfileNotFoundError):
        IndexedProfileReader(indexed["url"]).read_profile("0x" + "ab" * 32)


def test_v1_decisions_still_replay():
    """Decisions made with scorecard v1 (monthly income CV, up to 331.66 %) load and replay."""
    from datetime import date

    from lending.credit.decision import DecisionRecord, evaluate
    from lending.credit.features import ProfileSnapshot, features_from_profile
    from lending.credit.policy import DEFAULT_POLICY
    from lending.credit.scorecard import MODEL_DIR, load_model
    from lending.credit.simulation import simulate_population

    v1 = load_model(MODEL_DIR / "scorecard-v1.json")
    assert v1.version != load_model().version
    profile = simulate_population(6, 1, "fairness").farmers[0].profile
    features = features_from_profile(profile).model_copy(update={"sale_income_cv_bps": 30_000})
    snapshot = ProfileSnapshot(
        farmer_id=profile["farmer_id"], block_number=1, block_hash=profile["block_hash"],
        as_of=date(2025, 11, 30), features=features,
    )  # fmt: skip
    decision = evaluate(snapshot, model=v1, policy=DEFAULT_POLICY, contract_date=date(2025, 12, 1))
    record = DecisionRecord(
        decision_id="v1", lender="0x" + "11" * 20, decided_at=datetime(2025, 12, 1, tzinfo=UTC),
        decision=decision,
    )  # fmt: skip
    stored = DecisionRecord.model_validate_json(record.model_dump_json())
    assert stored.decision.model_version == v1.version
    assert replay(stored).matches
