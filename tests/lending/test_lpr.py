"""A stale LPR table refuses to price; `tealedger lpr show|update` keeps the user's table."""

import hashlib
import json
from datetime import UTC, date, datetime

import pytest
import typer
from typer.testing import CliRunner

from lending.credit.access import MappingProfileReader, StaticConsent
from lending.credit.decision import decide
from lending.credit.fairness import CONTRACT_DATE
from lending.credit.policy import DEFAULT_BANDS, DEFAULT_POLICY
from lending.credit.price import price_offer
from lending.credit.replay import replay
from lending.credit.simulation import simulate_population
from lending.credit.store import store_for_url
from lending.errors import (
    ExitCode,
    LprTableError,
    RateCapExceededError,
    StaleLprTableError,
    exit_code_for,
)
from lending.pricing.caps import CapPolicy, check_rate_cap
from lending.pricing.cli import register
from lending.pricing.disclosure import disclose
from lending.pricing.lpr import (
    DEFAULT_TABLE,
    SHIPPED_TABLE,
    TABLE_ENV,
    load_lpr_table,
    next_fixing_date,
    save_lpr_table,
    shipped_lpr_table,
    user_table_path,
)
from lending.pricing.schedule import ScheduleKind, ScheduleTerms
from tests.conftest import LPR_TEST_TABLE
from tests.lending.cli_root import cli_root

SHIPPED = shipped_lpr_table()
LAST_VALID = SHIPPED.covers_through  # 2025-10-20
DAY_AFTER = date(2025, 10, 21)
UPDATE = "tealedger lpr update --date YYYY-MM-DD --one-year-bps N --five-year-bps N"


def terms(start: date) -> ScheduleTerms:
    return ScheduleTerms(1_000_000, 800, 12, ScheduleKind.EQUAL_INSTALLMENT, start)


@pytest.fixture
def app() -> typer.Typer:
    return cli_root(register)


@pytest.fixture
def user_table(tmp_path, monkeypatch):
    path = tmp_path / "data" / "lpr_1y.json"
    monkeypatch.setenv(TABLE_ENV, str(path))
    return path


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ----------------------------------------------------------------------------- refusal


def test_pricing_after_the_tables_validity_is_refused_with_the_update_command():
    # Issue 17: a stale table only warned, and the offer was priced on an old fixing.
    assert disclose(terms(LAST_VALID), table=SHIPPED).rate_cap.lpr.fixing.date == LAST_VALID
    with pytest.raises(StaleLprTableError) as err:
        disclose(terms(DAY_AFTER), table=SHIPPED)
    assert UPDATE in str(err.value) and "valid through 2025-10-20" in str(err.value)
    assert (err.value.on, err.value.valid_through) == (DAY_AFTER, LAST_VALID)
    with pytest.raises(StaleLprTableError):
        disclose(terms(DAY_AFTER), table=SHIPPED, enforce_caps=False)  # not even shown
    with pytest.raises(StaleLprTableError):
        check_rate_cap(800, DAY_AFTER, table=SHIPPED)


def test_only_the_hard_cap_needs_no_table():
    d = disclose(terms(date(2099, 1, 1)), CapPolicy(use_lpr_cap=False), table=SHIPPED)
    assert d.rate_cap.lpr is None and d.rate_cap.rule == "hard_cap_24pct"


def test_a_credit_offer_on_a_stale_date_is_refused_not_priced():
    band = DEFAULT_BANDS[0]
    pricing, _ = price_offer(1_000_000, band, DEFAULT_POLICY, CONTRACT_DATE, SHIPPED)
    assert pricing.offered_rate_bps == band.rate_bps  # the fairness report's date is covered
    with pytest.raises(StaleLprTableError):
        price_offer(1_000_000, band, DEFAULT_POLICY, DAY_AFTER, SHIPPED)


def test_stale_data_has_its_own_exit_code_and_http_status():
    from api.core.errors import detail_of, status_of

    exc = StaleLprTableError(DAY_AFTER, LAST_VALID, SHIPPED.version, SHIPPED.origin)
    assert exit_code_for(exc) == ExitCode.STALE_DATA == 5
    assert exit_code_for(exc) not in {exit_code_for(LprTableError("x")), ExitCode.ERROR}
    assert status_of(exc) == 503 and UPDATE in detail_of(exc)
    assert exit_code_for(RateCapExceededError(1, 1, "r", DAY_AFTER)) == ExitCode.RATE_CAP_EXCEEDED


def test_the_apr_command_refuses_a_stale_table(app):
    args = ["apr", "--principal-fen", "1000000", "--rate-bps", "800", "--term-months", "12",
            "--kind", "bullet", "--lpr-table", str(SHIPPED_TABLE)]  # fmt: skip
    stale = CliRunner().invoke(app, [*args, "--start", DAY_AFTER.isoformat()])
    assert stale.exit_code == ExitCode.STALE_DATA, stale.output
    assert UPDATE in stale.stderr and stale.stdout == ""
    fresh = CliRunner().invoke(app, [*args, "--start", LAST_VALID.isoformat()])
    assert fresh.exit_code == 0, fresh.stderr


# ----------------------------------------------------------------------------- which table


def test_the_tests_price_against_a_labelled_assumption_of_the_shipped_fixings():
    table = load_lpr_table()
    assert table.origin == str(LPR_TEST_TABLE.resolve())
    assert table.fixings == SHIPPED.fixings and table.covers_through == date(2035, 12, 31)
    assert "ASSUMED UNCHANGED" in table.source and "assumed-unchanged" in table.version


def test_the_default_user_table_is_in_the_data_dir_and_falls_back_to_the_shipped(
    tmp_path, monkeypatch
):
    monkeypatch.delenv(TABLE_ENV)
    monkeypatch.setenv("TEALEDGER_DATA_DIR", str(tmp_path))
    assert user_table_path() == tmp_path / "lpr_1y.json"
    assert load_lpr_table() == SHIPPED  # no user table yet
    save_lpr_table(SHIPPED.with_fixing(date(2025, 11, 20), 300, 350))
    assert load_lpr_table().five_year_bps == ((date(2025, 11, 20), 350),)


def test_a_missing_table_named_by_the_environment_is_an_error(user_table):
    with pytest.raises(LprTableError, match="does not exist: create it with `tealedger lpr"):
        load_lpr_table()


def test_the_shipped_table_is_never_written():
    with pytest.raises(LprTableError, match="shipped with the package"):
        save_lpr_table(SHIPPED, SHIPPED_TABLE)


def test_an_assumed_table_says_so_in_its_version_source_and_disclosures():
    assumed = SHIPPED.assuming_unchanged_through(date(2026, 12, 31))
    assert assumed.assumed and not SHIPPED.assumed
    assert assumed.version == "2025-10-20.r1+assumed-unchanged-through-2026-12-31"
    assert assumed.source.startswith("ASSUMPTION, not published data")
    d = disclose(terms(date(2026, 12, 31)), table=assumed)
    assert any("simulation assumption" in w for w in d.warnings)
    assert SHIPPED.assuming_unchanged_through(LAST_VALID) is SHIPPED


# ----------------------------------------------------------------------------- lpr update


def test_update_records_a_fixing_in_the_users_table_only(app, user_table):
    shipped_before = _digest(SHIPPED_TABLE)
    args = ["lpr", "update", "--date", "2025-11-20", "--one-year-bps", "300",
            "--five-year-bps", "350"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert f"wrote {user_table}" in result.stdout
    assert _digest(SHIPPED_TABLE) == shipped_before
    table = load_lpr_table()
    assert table.origin == str(user_table.resolve())
    assert table.fixings[:-1] == SHIPPED.fixings
    last = table.fixings[-1]
    assert (last.date, last.rate_bps) == (date(2025, 11, 20), 300)
    assert table.five_year_bps == ((date(2025, 11, 20), 350),)
    assert table.covers_through == date(2025, 12, 19)  # the day before the next fixing
    assert table.version == "2025-11-20.local1"
    assert json.loads(user_table.read_text())["fixings"][-1]["five_year_bps"] == 350
    # Priced now up to the new validity, refused after it.
    assert disclose(terms(date(2025, 12, 19))).rate_cap.lpr.table_version == table.version
    with pytest.raises(StaleLprTableError):
        disclose(terms(date(2025, 12, 20)))
    shown = CliRunner().invoke(app, ["lpr", "show", "--on", "2025-12-01"])
    assert shown.exit_code == 0 and "2025-11-20" in shown.stdout and "3.50%" in shown.stdout
    assert "valid through   2025-12-19  (valid on 2025-12-01)" in shown.stdout


def test_update_corrects_the_last_fixing_and_extends_validity_when_told(app, user_table):
    save_lpr_table(SHIPPED.with_fixing(date(2025, 11, 20), 300, 350))
    args = ["lpr", "update", "--date", "2025-11-20", "--one-year-bps", "295",
            "--five-year-bps", "345", "--valid-through", "2026-01-19"]  # fmt: skip
    assert CliRunner().invoke(app, args).exit_code == 0
    table = load_lpr_table()
    assert table.fixings[-1].rate_bps == 295 and len(table.fixings) == len(SHIPPED.fixings) + 1
    assert table.five_year_bps == ((date(2025, 11, 20), 345),)
    assert table.version == "2025-11-20.local2" and table.covers_through == date(2026, 1, 19)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--date", "2025-09-22"], "before the table's last fixing"),
        (["--date", "2026-03-20"], "record the fixings published between"),
        (["--date", "2025-11-31"], "not a date"),
        (["--date", "2025-11-20", "--valid-through", "2025-11-01"], "before the fixing date"),
        (["--date", "2025-11-20", "--one-year-bps", "0"], "positive int"),
    ],
)
def test_update_refuses_what_would_make_the_table_wrong(app, user_table, args, message):
    base = ["lpr", "update", "--one-year-bps", "300", "--five-year-bps", "350"]
    result = CliRunner().invoke(app, [*base, *args])
    assert result.exit_code == ExitCode.USAGE, result.output
    assert message in result.stderr and not user_table.exists()


def test_next_fixing_date_is_the_20th():
    assert next_fixing_date(date(2025, 10, 20)) == date(2025, 11, 20)
    assert next_fixing_date(date(2025, 10, 19)) == date(2025, 10, 20)
    assert next_fixing_date(date(2025, 12, 22)) == date(2026, 1, 20)


# ----------------------------------------------------------------------------- demo and replay


@pytest.fixture
def shipped_only(tmp_path, monkeypatch):
    """No test table and no user table: what a fresh checkout prices with."""
    monkeypatch.delenv(TABLE_ENV)
    monkeypatch.setenv("TEALEDGER_DATA_DIR", str(tmp_path))


def test_the_demo_prices_today_on_a_labelled_assumption(shipped_only, tmp_path):
    from tealedger.demo.lending import assume_lpr_through

    today = date(2026, 12, 6)
    with pytest.raises(StaleLprTableError):
        disclose(terms(today))  # a fresh checkout refuses to price today
    assert assume_lpr_through(LAST_VALID) is None  # covered: nothing written
    assert not (tmp_path / DEFAULT_TABLE).exists()
    table = assume_lpr_through(today)
    assert table is not None and table.assumed and table.covers_through == today
    assert table.fixings == SHIPPED.fixings and "assum" in table.version
    assert load_lpr_table() == table  # the demo's data dir now prices with it, and says so
    assert disclose(terms(today)).rate_cap.lpr.table_version == table.version
    assert assume_lpr_through(today) is None


def test_a_decision_priced_on_an_assumed_table_replays(shipped_only):
    lender, on = "0x" + "3c" * 20, date(2026, 12, 1)
    farmers = simulate_population(6, 40, "fairness").farmers
    profiles = MappingProfileReader({f.farmer_id: f.profile for f in farmers})
    consent = StaticConsent([(f.farmer_id, lender) for f in farmers])
    log = store_for_url("sqlite://", create=True)
    table = SHIPPED.assuming_unchanged_through(on)
    at = datetime(2026, 12, 1, 1, tzinfo=UTC)
    records = [
        decide(f.farmer_id, lender, profiles=profiles, consent=consent, access_log=log,
               contract_date=on, now=at, lpr_table=table)
        for f in farmers
    ]  # fmt: skip
    priced = [r for r in records if r.decision.disclosure is not None]
    assert priced, "some simulated farmer is offered a loan"
    for record in priced:
        version = record.decision.disclosure.rate_cap.lpr.table_version
        assert version.endswith("+assumed-unchanged-through-2026-12-01")
        assert replay(record).matches
