"""Credit decisions: outcomes, limits, capped prices, reasons, consent, storage and replay."""

import uuid
from datetime import UTC, date, datetime

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, create_engine, select

from lending.credit.access import (
    AccessOutcome,
    MappingProfileReader,
    MemoryAccessLog,
    StaticConsent,
)
from lending.credit.decision import decide, evaluate
from lending.credit.features import snapshot_from_profile
from lending.credit.models import CreditDecisionRow
from lending.credit.policy import (
    DEFAULT_BANDS,
    DEFAULT_POLICY,
    CapAction,
    CreditPolicy,
    Outcome,
    OverCapAction,
)
from lending.credit.reasons import reason_codes
from lending.credit.replay import replay
from lending.credit.scorecard import load_model
from lending.credit.simulation import simulate_population
from lending.credit.store import CreditStore, _by_id, create_tables
from lending.errors import (
    ConsentCheckError,
    ConsentRequiredError,
    DecisionNotFoundError,
    ImmutableRecordError,
    InvalidRequestError,
    ModelError,
    ProfileDataError,
    ProfileNotFoundError,
    RecordTamperedError,
)
from lending.pricing.caps import check_rate_cap
from lending.pricing.disclosure import disclose
from tests.lending.strategies import features_st

MODEL = load_model()
CONTRACT = date(2025, 12, 1)
LENDER = "0x" + "1f" * 20
POPULATION = simulate_population(6, 300, "fairness")
FARMERS = POPULATION.farmers
SNAPSHOTS = [snapshot_from_profile(f.profile) for f in FARMERS]
PROFILES = {f.farmer_id: f.profile for f in FARMERS}
NOW = datetime(2025, 12, 1, 2, 30, tzinfo=UTC)


def _evaluate(snapshot, policy=DEFAULT_POLICY, contract_date=CONTRACT):
    return evaluate(snapshot, model=MODEL, policy=policy, contract_date=contract_date)


def _decide(farmer_id, *, store=None, log=None, consent=None, profiles=None, **kw):
    return decide(
        farmer_id,
        LENDER,
        profiles=profiles or MappingProfileReader(PROFILES),
        consent=consent or StaticConsent([(farmer_id, LENDER)]),
        access_log=log if log is not None else (store or MemoryAccessLog()),
        store=store,
        contract_date=CONTRACT,
        now=NOW,
        **kw,
    )


DECISIONS = [_evaluate(s) for s in SNAPSHOTS]


# ----------------------------------------------------------------------------- databases


@pytest.fixture(scope="session")
def postgres_url():
    """A throwaway PostgreSQL database for the session (skipped if no server answers)."""
    psycopg = pytest.importorskip("psycopg")
    name = f"tealedger_credit_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True)
    except psycopg.OperationalError:
        pytest.skip("no PostgreSQL server at 127.0.0.1:5432")
    admin.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    if request.param == "sqlite":
        eng = create_engine(f"sqlite:///{tmp_path / 'credit.db'}")
    else:
        eng = create_engine(request.getfixturevalue("postgres_url"))
    create_tables(eng)
    yield eng
    if request.param == "postgresql":
        with eng.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS credit_decision, profile_access_log"))
    eng.dispose()


@pytest.fixture
def store(engine):
    return CreditStore(engine)


# ----------------------------------------------------------------------------- outcomes


def test_population_gets_every_outcome():
    assert {d.outcome for d in DECISIONS} == set(Outcome)


def test_offers_carry_limit_price_and_full_disclosure():
    policy, product = DEFAULT_POLICY, DEFAULT_POLICY.product
    for d in DECISIONS:
        assert d.model_version == MODEL.version
        assert d.policy_hash == policy.policy_hash
        if d.outcome is Outcome.DECLINE:
            assert d.limit_fen == 0 and d.disclosure is None
            continue
        assert product.min_limit_fen <= d.limit_fen <= product.max_limit_fen
        assert d.limit_fen % policy.limit_step_fen == 0
        assert d.disclosure.principal_fen == d.limit_fen
        assert d.disclosure.kind is product.kind
        assert d.disclosure.annual_rate_pct * 100 == d.pricing.offered_rate_bps
        assert d.disclosure.rate_cap.within_cap
        assert d.pricing.offered_rate_bps <= d.pricing.band_rate_bps


def test_limit_is_income_share_by_band_less_exposure():
    d = next(
        x for x in DECISIONS if x.outcome is Outcome.APPROVE and x.features.current_exposure_fen
    )
    f, policy = d.features, DEFAULT_POLICY
    band = next(b for b in policy.bands if b.name == d.band)
    base = f.trailing_sale_income_fen * policy.income_share_bps // 10_000
    expected = base * band.limit_share_bps // 10_000 - f.current_exposure_fen
    expected = min(expected, policy.product.max_limit_fen) // 10_000 * 10_000
    assert d.base_limit_fen == base
    assert d.limit_fen == expected


@settings(max_examples=200, deadline=None)
@given(features_st)
def test_limit_never_above_product_maximum(features):
    snapshot = SNAPSHOTS[0].model_copy(update={"features": features})
    d = _evaluate(snapshot)
    assert 0 <= d.limit_fen <= DEFAULT_POLICY.product.max_limit_fen
    if d.outcome is not Outcome.DECLINE:
        assert d.limit_fen >= DEFAULT_POLICY.product.min_limit_fen


def test_implausible_yield_is_referred_with_a_note():
    base = next(s for s, d in zip(SNAPSHOTS, DECISIONS, strict=True) if d.band == "A")
    f = base.features.model_copy(update={"fresh_leaf_kg_per_mu_x100": 150_000})
    d = _evaluate(base.model_copy(update={"features": f}))
    assert d.outcome is Outcome.REFER
    assert "YIELD_IMPLAUSIBLE" in {n.code for n in d.notes}


def test_no_verified_income_is_declined_with_a_note():
    base = SNAPSHOTS[0]
    f = base.features.model_copy(update={"trailing_sale_income_fen": 0})
    d = _evaluate(base.model_copy(update={"features": f}))
    assert d.outcome is Outcome.DECLINE and d.limit_fen == 0
    codes = {n.code for n in d.notes}
    assert codes & {"LIMIT_BELOW_MINIMUM", "SCORE_BELOW_CUTOFF"}


# ----------------------------------------------------------------------------- reasons


@settings(max_examples=300, deadline=None)
@given(features_st)
def test_reason_codes_are_the_largest_point_losses(features):
    result = MODEL.score(features)
    reasons = reason_codes(MODEL, result.by_feature, 4)
    lost = {p.name: p.points_lost for p in result.by_feature}
    chosen = [r.feature for r in reasons]
    assert len(reasons) <= 4
    assert all(r.points_lost == lost[r.feature] > 0 for r in reasons)
    assert [r.points_lost for r in reasons] == sorted(
        (r.points_lost for r in reasons), reverse=True
    )
    others = [v for k, v in lost.items() if k not in chosen]
    if reasons:
        assert max(others, default=0) <= reasons[-1].points_lost
    if len(reasons) < 4:
        assert all(v == 0 for v in others)


@settings(max_examples=200, deadline=None)
@given(features_st)
def test_each_reason_says_what_would_add_points(features):
    result = MODEL.score(features)
    bins = {fb.name: fb for fb in MODEL.features}
    for r in reason_codes(MODEL, result.by_feature, 4):
        fb = bins[r.feature]
        here = next(p for p in result.by_feature if p.name == r.feature)
        assert r.text_en and r.text_zh and r.improve_en and r.improve_zh
        if r.feature in LIFETIME_PAST_EVENTS:  # nothing the farmer can reach adds points
            assert (r.target_value, r.target_gain) == (here.value, 0)
            assert "points" not in r.improve_en and "分" not in r.improve_zh
            continue
        assert fb.points[fb.bin_of(r.target_value)] - here.points == r.target_gain > 0
        assert str(r.target_gain) in r.improve_en and f"{r.target_gain}分" in r.improve_zh


# What each feature is computed over (lending/credit/features.py, profile_fields): the credit
# history has no 24-month window, so days past due and loans repaid are lifetime figures.
WINDOWS = {
    "trailing_sale_income_fen": ("in the last 12 months", "近12个月"),
    "sale_income_cv_bps": ("in the last 12 months", "近12个月"),
    "trailing_fresh_leaf_kg": ("in the last 12 months", "近12个月"),
    "fresh_leaf_trend_bps": (
        "in the last 12 months against the 12 months before",
        "与前12个月相比",
    ),
    "premium_grade_share_bps": ("in the last 12 months", "近12个月"),
    "fresh_leaf_kg_per_mu_x100": ("in the last 12 months", "近12个月"),
    "tenure_months": ("since the cooperative registered you", "自合作社登记您以来"),
    "quality_failures_24m": ("in the last 24 months", "近24个月"),
    "recalled_lots_24m": ("in the last 24 months", "近24个月"),
    "loans_repaid_on_time": ("over all your loans on the platform so far", "全部贷款"),
    "max_days_past_due_24m": ("over all your loans on the platform so far", "全部贷款"),
    "exposure_to_income_bps": ("at present", "目前"),
}
PAST_EVENTS = {"quality_failures_24m", "recalled_lots_24m", "max_days_past_due_24m"}
LIFETIME_PAST_EVENTS = {"max_days_past_due_24m"}


def _all_reasons(features):
    result = MODEL.score(features)
    return reason_codes(MODEL, result.by_feature, len(MODEL.features))


@settings(max_examples=200, deadline=None)
@given(features_st)
def test_each_reason_names_the_real_window_of_its_feature(features):
    # Issue 17: a lifetime figure (days past due) was said to be "in the last 24 months".
    for r in _all_reasons(features):
        en, zh = WINDOWS[r.feature]
        assert en in r.text_en and zh in r.text_zh, r
        if "12 months" not in en and "24 months" not in en:
            assert "months" not in r.text_en.replace(f"{r.value:,} months", "")
            assert "个月" not in r.text_zh.replace(f"{r.value:,}个月", "")


@settings(max_examples=200, deadline=None)
@given(features_st)
def test_no_reason_asks_the_farmer_to_change_the_past(features):
    # Issue 17: "lowering longest delay ... would add points" asked to undo a past delay.
    for r in (r for r in _all_reasons(features) if r.feature in PAST_EVENTS):
        assert not r.improve_en.startswith(("Lowering", "Raising")), r.improve_en
        assert "from now on" in r.improve_en and "今后" in r.improve_zh
        assert "cannot be changed" in r.improve_en and "无法更改" in r.improve_zh
        if r.feature in LIFETIME_PAST_EVENTS:
            assert "does not go down" in r.improve_en and "不会降低" in r.improve_zh
        else:
            assert "stops counting 24 months after" in r.improve_en


def test_every_feature_has_a_window_and_past_events_an_action():
    from lending.credit.features import FEATURE_SPECS

    assert {s.name for s in FEATURE_SPECS} == set(WINDOWS)
    assert {s.name for s in FEATURE_SPECS if s.past_events} == PAST_EVENTS


def test_reason_texts_are_bilingual_and_specific():
    d = next(x for x in DECISIONS if x.outcome is Outcome.DECLINE and x.reasons)
    r = d.reasons[0]
    assert f"{r.points} of {r.max_points} points" in r.text_en
    assert f"得{r.points}分" in r.text_zh
    assert r.code.isupper()


# ----------------------------------------------------------------------------- rate caps


def _policy(rate_bps, fee_bps, penalty_bps, over_cap, hard_cap, use_lpr):
    bands = tuple(
        b.model_copy(update={"rate_bps": rate_bps + 100 * i}) if b.action is not Outcome.DECLINE
        else b
        for i, b in enumerate(DEFAULT_BANDS)
    )  # fmt: skip
    product = DEFAULT_POLICY.product.model_copy(
        update={"upfront_fee_bps": fee_bps, "penalty_rate_bps": penalty_bps}
    )
    return CreditPolicy(
        bands=bands, product=product, over_cap=over_cap, hard_cap_bps=hard_cap,
        use_lpr_cap=use_lpr,
    )  # fmt: skip


def test_a_zero_rate_carried_over_the_cap_by_its_overdue_rate_is_declined():
    # Found by the property below: a 0 bps band whose penalty rate alone is over the cap has no
    # lower rate to try (the search used to ask for -1 bps and divide by a zero rate).
    policy = _policy(0, 0, 2_000, OverCapAction.CAP, 1_200, False)
    snapshot = next(
        s for s, d in zip(SNAPSHOTS, DECISIONS, strict=True) if d.outcome is Outcome.APPROVE
    )
    d = _evaluate(snapshot, policy, date(2026, 3, 1))
    assert d.pricing is not None and d.pricing.cap_action is CapAction.DECLINED_OVER_CAP
    assert d.outcome is Outcome.DECLINE and d.disclosure is None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    snapshot=st.sampled_from([s for s, d in zip(SNAPSHOTS, DECISIONS, strict=True)
                              if d.outcome is not Outcome.DECLINE][:40]),
    rate_bps=st.integers(0, 3_600),
    fee_bps=st.sampled_from([0, 50, 200, 800]),
    penalty_bps=st.sampled_from([0, 0, 500, 2_000]),
    over_cap=st.sampled_from(list(OverCapAction)),
    hard_cap=st.sampled_from([1_200, 2_400, 3_600]),
    use_lpr=st.booleans(),
    contract_date=st.dates(date(2019, 8, 20), date(2026, 6, 30)),
)  # fmt: skip
def test_offers_over_the_rate_cap_are_impossible(
    snapshot, rate_bps, fee_bps, penalty_bps, over_cap, hard_cap, use_lpr, contract_date
):
    policy = _policy(rate_bps, fee_bps, penalty_bps, over_cap, hard_cap, use_lpr)
    d = _evaluate(snapshot, policy, contract_date)
    event(d.pricing.cap_action.value if d.pricing else "no offer")
    if d.pricing is None:
        assert d.outcome is Outcome.DECLINE
        return
    if d.pricing.cap_action is CapAction.DECLINED_OVER_CAP:
        assert d.outcome is Outcome.DECLINE and d.disclosure is None and d.limit_fen == 0
        assert "OVER_RATE_CAP" in {n.code for n in d.notes}
        return
    cap = policy.cap_policy()
    assert d.disclosure.rate_cap.within_cap
    check_rate_cap(d.disclosure.rate_cap.rate_pct, contract_date, cap)  # raises if over
    if d.disclosure.penalty_cap is not None:
        assert d.disclosure.penalty_cap.within_cap
    assert d.pricing.offered_rate_bps <= d.pricing.band_rate_bps
    if d.pricing.cap_action is CapAction.CAPPED:
        assert over_cap is OverCapAction.CAP
        assert "RATE_CAPPED" in {n.code for n in d.notes}
        # The highest whole bps within the cap: one more would exceed it.
        terms = d.disclosure
        from lending.credit.price import _terms

        above = _terms(terms.principal_fen, d.pricing.offered_rate_bps + 1, policy.product,
                       contract_date)  # fmt: skip
        over = disclose(above, cap, enforce_caps=False)
        assert not (over.rate_cap.within_cap and (over.penalty_cap is None
                                                  or over.penalty_cap.within_cap))  # fmt: skip


def test_band_rate_above_the_cap_is_capped_and_stated():
    d = next(x for x in DECISIONS if x.band == "D" and x.outcome is Outcome.REFER)
    assert d.pricing.band_rate_bps == 1250
    assert d.pricing.cap_action is CapAction.CAPPED
    assert d.pricing.offered_rate_bps < 1250
    assert d.pricing.cap_rule.startswith("4x_lpr_")
    assert d.pricing.checked_rate_pct <= d.pricing.cap_pct
    note = next(n for n in d.notes if n.code == "RATE_CAPPED")
    assert "1250 bps" in note.text_en and d.pricing.cap_rule in note.text_zh


def test_band_rate_above_the_cap_is_declined_when_the_policy_says_so():
    policy = DEFAULT_POLICY.model_copy(update={"over_cap": OverCapAction.DECLINE})
    i = next(i for i, x in enumerate(DECISIONS) if x.band == "D" and x.outcome is Outcome.REFER)
    d = _evaluate(SNAPSHOTS[i], policy)
    assert d.outcome is Outcome.DECLINE and d.disclosure is None
    assert d.pricing.cap_action is CapAction.DECLINED_OVER_CAP
    assert "OVER_RATE_CAP" in {n.code for n in d.notes}


# ----------------------------------------------------------------------------- consent


class _NoReads:
    def read_profile(self, farmer_id):
        raise AssertionError("the profile must not be read without consent")


def test_no_decision_without_consent():
    log = MemoryAccessLog()
    farmer = FARMERS[0].farmer_id
    with pytest.raises(ConsentRequiredError, match="active consent") as info:
        _decide(farmer, log=log, consent=StaticConsent(), profiles=_NoReads())
    assert info.value.farmer_id == farmer and info.value.lender == LENDER
    assert [e.outcome for e in log.entries] == [AccessOutcome.REFUSED_NO_CONSENT]


def test_consent_for_another_lender_does_not_count():
    farmer = FARMERS[0].farmer_id
    other = StaticConsent([(farmer, "0x" + "22" * 20)])
    with pytest.raises(ConsentRequiredError):
        _decide(farmer, consent=other, profiles=_NoReads())


def test_consent_check_failure_is_a_refusal():
    class Down:
        def has_consent(self, farmer_id, lender):
            raise ConsentCheckError("node unreachable")

    with pytest.raises(ConsentCheckError):
        _decide(FARMERS[0].farmer_id, consent=Down(), profiles=_NoReads())


def test_every_profile_read_is_logged():
    log = MemoryAccessLog()
    record = _decide(FARMERS[1].farmer_id, log=log)
    (entry,) = log.entries
    assert entry.outcome is AccessOutcome.READ
    assert entry.decision_id == record.decision_id
    assert entry.block_number == record.decision.profile_block_number
    assert entry.block_hash == record.decision.profile_block_hash
    assert entry.lender == LENDER.lower()


@pytest.mark.parametrize("bad", ["0x1234", "farmer-1", 42])
def test_malformed_farmer_id_is_refused(bad):
    with pytest.raises(InvalidRequestError):
        _decide(bad, consent=StaticConsent(everyone=True), profiles=_NoReads())


def test_malformed_lender_is_refused():
    with pytest.raises(InvalidRequestError, match="lender"):
        decide(
            FARMERS[0].farmer_id, "bank", profiles=_NoReads(),
            consent=StaticConsent(everyone=True), access_log=MemoryAccessLog(),
        )  # fmt: skip


# ----------------------------------------------------------------------------- bad data


def _without(key):
    return lambda p: {k: v for k, v in p.items() if k != key}


def _with(key, value):
    return lambda p: {**p, key: value}


BAD_PROFILES = [
    ("seasonal_sale_income_fen", _without("seasonal_sale_income_fen")),
    ("seasonal_sale_income_fen", _with("seasonal_sale_income_fen", [100] * 12)),
    ("seasonal_sale_income_fen[3]", _with("seasonal_sale_income_fen", [100, 100, 100, -5])),
    ("seasonal_sale_income_fen[0]", _with("seasonal_sale_income_fen", [10.5, 0, 0, 0])),
    ("harvest_grams_by_grade", _with("harvest_grams_by_grade", {9: 1000})),
    ("harvest_grams_by_grade", _with("harvest_grams_by_grade", [1, 2, 3])),
    ("plot_area_centi_mu", _with("plot_area_centi_mu", 0)),
    ("plot_area_centi_mu", _with("plot_area_centi_mu", "300")),
    ("registered_at", _with("registered_at", "2030-01-01")),
    ("registered_at", _with("registered_at", "last spring")),
    ("as_of", _without("as_of")),
    ("block_hash", _with("block_hash", "0xabc")),
    ("block_number", _with("block_number", -1)),
    ("loans_repaid_on_time", _with("loans_repaid_on_time", True)),
    ("outstanding_principal_fen", _with("outstanding_principal_fen", None)),
    ("max_days_past_due_24m", _with("max_days_past_due_24m", 3.0)),
]


@pytest.mark.parametrize(("field", "mutate"), BAD_PROFILES, ids=[b[0] for b in BAD_PROFILES])
def test_bad_or_missing_profile_data_is_a_clear_refusal(field, mutate):
    farmer = FARMERS[2].farmer_id
    log = MemoryAccessLog()
    profiles = MappingProfileReader({farmer: mutate(PROFILES[farmer])})
    with pytest.raises(ProfileDataError) as info:
        _decide(farmer, log=log, profiles=profiles)
    assert info.value.field == field
    assert field in str(info.value) and "no decision was made" in str(info.value)
    assert [e.outcome for e in log.entries] == [AccessOutcome.READ_INVALID]


@pytest.mark.parametrize("profile", [None, "a profile", 7, b"x" * 32])
def test_a_profile_that_is_not_a_profile_is_refused(profile):
    farmer = FARMERS[2].farmer_id
    with pytest.raises(ProfileDataError, match="<profile>"):
        _decide(farmer, profiles=MappingProfileReader({farmer: profile}))


def test_unknown_farmer_profile_is_refused():
    farmer = "0x" + "77" * 32
    with pytest.raises(ProfileNotFoundError):
        _decide(farmer)


def test_profile_of_another_farmer_is_refused():
    farmer = FARMERS[3].farmer_id
    profiles = MappingProfileReader({farmer: PROFILES[FARMERS[4].farmer_id]})
    with pytest.raises(ProfileDataError, match="farmer_id"):
        _decide(farmer, profiles=profiles)


# ----------------------------------------------------------------------------- storage


def test_decisions_are_stored_with_inputs_model_and_hash(store):
    record = _decide(FARMERS[5].farmer_id, store=store)
    with Session(store.engine) as session:
        row = session.exec(select(CreditDecisionRow)).one()
    d = record.decision
    assert row.model_version == MODEL.version
    assert row.profile_block_number == d.profile_block_number
    assert row.profile_block_hash == d.profile_block_hash
    assert row.score == d.score and row.outcome == d.outcome.value
    assert row.reason_codes == ",".join(r.code for r in d.reasons)
    assert row.content_hash == record.content_hash
    assert store.get_decision(record.decision_id) == record
    assert store.get_decision(record.decision_id[:10]) == record
    assert store.decisions_for(d.farmer_id) == [record]
    (entry,) = store.access_log(d.farmer_id)
    assert entry.decision_id == record.decision_id and entry.outcome is AccessOutcome.READ


def test_refusals_are_logged_in_the_store(store):
    farmer = FARMERS[6].farmer_id
    with pytest.raises(ConsentRequiredError):
        _decide(farmer, store=store, consent=StaticConsent())
    assert [e.outcome for e in store.access_log(farmer)] == [AccessOutcome.REFUSED_NO_CONSENT]
    assert store.decisions_for(farmer) == []


def test_stored_decisions_cannot_be_changed_through_the_orm(store):
    _decide(FARMERS[7].farmer_id, store=store)
    with Session(store.engine) as session:
        row = session.exec(select(CreditDecisionRow)).one()
        row.score += 100
        session.add(row)
        with pytest.raises(ImmutableRecordError):
            session.commit()
    with Session(store.engine) as session:
        row = session.exec(select(CreditDecisionRow)).one()
        session.delete(row)
        with pytest.raises(ImmutableRecordError):
            session.commit()


@pytest.mark.parametrize("table", ["credit_decision", "profile_access_log"])
@pytest.mark.parametrize("sql", ["UPDATE {t} SET lender = 'x'", "DELETE FROM {t}"])
def test_stored_rows_cannot_be_changed_in_sql(store, table, sql):
    _decide(FARMERS[8].farmer_id, store=store)
    with pytest.raises(DBAPIError, match="insert-only"), store.engine.begin() as conn:
        conn.execute(text(sql.format(t=table)))
    assert len(store.decisions_for(FARMERS[8].farmer_id)) == 1


def test_a_row_altered_behind_the_database_is_detected(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'c.db'}")
    create_tables(engine)
    store = CreditStore(engine)
    record = _decide(FARMERS[9].farmer_id, store=store)
    with engine.begin() as conn:
        conn.execute(text("DROP TRIGGER credit_decision_no_update"))
        conn.execute(text("UPDATE credit_decision SET score = score + 50"))
    with pytest.raises(RecordTamperedError, match="indexed columns"):
        store.get_decision(record.decision_id)
    with engine.begin() as conn:
        conn.execute(text("UPDATE credit_decision SET score = score - 50"))
        conn.execute(text("UPDATE credit_decision SET record_json = "
                          "replace(record_json, '\"outcome\":', '\"outcome\": ')"))  # fmt: skip
    with pytest.raises(RecordTamperedError, match="content hash"):
        store.get_decision(record.decision_id)


def test_a_full_decision_id_is_found_through_its_index(store):
    """An id of 32 characters is looked up by equality, never by a prefix query that SQLite
    cannot answer from the index (its LIKE ignores case) and so reads every decision."""
    record = _decide(FARMERS[7].farmer_id, store=store)
    query = _by_id(record.decision_id.upper()).compile(  # type: ignore[attr-defined]
        store.engine, compile_kwargs={"literal_binds": True}
    )
    assert "LIKE" not in str(query).upper()
    with store.engine.connect() as conn:
        if store.engine.dialect.name == "sqlite":
            plan = " ".join(str(r[-1]) for r in conn.execute(text(f"EXPLAIN QUERY PLAN {query}")))
            assert "USING INDEX" in plan and not plan.startswith("SCAN"), plan
        else:
            conn.execute(text("SET enable_seqscan = off"))
            plan = " ".join(str(r[0]) for r in conn.execute(text(f"EXPLAIN {query}")))
            assert "Index" in plan, plan
    assert store.get_decision(record.decision_id.upper()) == record


def test_unknown_decision_id(store):
    with pytest.raises(DecisionNotFoundError):
        store.get_decision("deadbeefdeadbeef")
    with pytest.raises(DecisionNotFoundError, match="too short"):
        store.get_decision("abc")


# ----------------------------------------------------------------------------- replay


def test_replay_equals_the_original(store):
    for farmer in FARMERS[10:16]:
        record = _decide(farmer.farmer_id, store=store)
        loaded = store.get_decision(record.decision_id)
        result = replay(loaded, profile=farmer.profile)
        assert result.matches, result.differences
        assert result.recomputed == record.decision
        assert result.recomputed_hash == result.stored_hash


def test_replay_detects_a_decision_that_does_not_follow_from_its_inputs():
    record = _decide(FARMERS[16].farmer_id)
    forged = record.model_copy(
        update={
            "decision": record.decision.model_copy(update={"score": record.decision.score + 40})
        }
    )
    result = replay(forged)
    assert not result.matches and "score" in result.differences


def test_replay_detects_a_different_profile():
    record = _decide(FARMERS[17].farmer_id)
    other = {**PROFILES[FARMERS[17].farmer_id], "recalled_lots_24m": 3}
    result = replay(record, profile=other)
    assert "profile" in result.differences


def test_replay_needs_the_model_the_decision_names():
    record = _decide(FARMERS[18].farmer_id)
    orphan = record.model_copy(
        update={"decision": record.decision.model_copy(update={"model_version": "0" * 64})}
    )
    with pytest.raises(ModelError, match="no scorecard"):
        replay(orphan)
