"""`tealedger apr` through typer's CliRunner on an app built here."""

import json
from decimal import Decimal

import pytest
import typer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from lending.errors import ExitCode
from lending.pricing.cli import register
from tests.lending.cli_root import cli_root

LOAN = [
    "apr",
    "--principal-yuan", "100000",
    "--rate-bps", "800",
    "--term-months", "12",
    "--kind", "equal-installment",
    "--start", "2025-03-01",
    "--upfront-fee-yuan", "1000",
]  # fmt: skip


@pytest.fixture
def app() -> typer.Typer:
    return cli_root(register)


def run(app, args):
    return CliRunner().invoke(app, args)


def test_human_output(app):
    result = run(app, LOAN)
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "APR (US Reg Z App. J)       9.90%" in out
    assert "PBoC annualized (compound)  10.36%" in out
    assert "PBoC annualized (simple)    9.90%" in out
    assert "4x_lpr_2025-02-20" in out
    assert "Amount financed             ¥99,000.00" in out
    assert out.count("2025-") + out.count("2026-") >= 12


def test_json_output(app):
    result = run(app, [*LOAN, "--json"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["principal_fen"] == 10_000_000 and data["upfront_fee_fen"] == 100_000
    assert Decimal(data["apr_regz_pct"]).quantize(Decimal("0.01")) == Decimal("9.90")
    assert len(data["installments"]) == 12


def test_file_input_with_overrides(app, tmp_path):
    path = tmp_path / "loan.json"
    path.write_text(
        json.dumps(
            {
                "principal_yuan": 50000.5,
                "rate_bps": 700,
                "term_months": 24,
                "kind": "seasonal",
                "start": "2025-01-10",
                "grace_months": 2,
                "flush_months": [4, 5, 9],
            }
        )
    )
    result = run(app, ["apr", "--file", str(path), "--json", "--rate-bps", "650"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["principal_fen"] == 5_000_050
    assert data["annual_rate_pct"] == "6.50"
    assert {row["due"][5:7] for row in data["installments"]} == {"04", "05", "09"}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--principal-fen", "-5"], "must be > 0"),
        (["--principal-fen", "100", "--principal-yuan", "1"], "not both"),
        (["--principal-yuan", "1.001"], "more than 2 decimal places"),
        (["--principal-yuan", "abc"], "not a number"),
        (["--principal-fen", "100000", "--start", "2025-02-30"], "not a date"),
        (["--principal-fen", "100000", "--start", "2019-01-01"], "before the first LPR fixing"),
        (["--principal-fen", "100000", "--kind", "weekly"], "unknown schedule kind"),
        (["--principal-fen", "100000", "--term-months", "0"], "between 1 and"),
        (["--principal-fen", "100000", "--cap-basis", "avg"], "unknown cap basis"),
        (["--principal-fen", "100000", "--flush-months", "4,x"], "month numbers"),
    ],
)
def test_bad_input_is_a_message_not_a_traceback(app, extra, message):
    args = ["apr", "--rate-bps", "800", "--term-months", "12", "--kind", "bullet",
            "--start", "2025-03-01"]  # fmt: skip
    # Later options win in click, so the extras override the defaults above.
    result = run(app, [*args, *extra])
    assert result.exit_code == ExitCode.USAGE == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stdout == ""


def test_missing_fields_and_bad_files(app, tmp_path):
    result = run(app, ["apr", "--principal-fen", "100000"])
    assert result.exit_code == 2 and "missing rate_bps" in result.stderr
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    result = run(app, ["apr", "--file", str(bad)])
    assert result.exit_code == 2 and "not valid JSON" in result.stderr
    result = run(app, ["apr", "--file", str(tmp_path / "missing.json")])
    assert result.exit_code == 2 and "cannot read" in result.stderr
    odd = tmp_path / "odd.json"
    odd.write_text(json.dumps({"principal_fen": 1, "rate": 5}))
    result = run(app, ["apr", "--file", str(odd)])
    assert result.exit_code == 2 and "unknown field(s) rate" in result.stderr


def test_allow_over_cap_shows_the_disclosure_with_a_warning(app):
    args = ["apr", "--principal-fen", "100000", "--rate-bps", "2000", "--term-months", "6",
            "--kind", "bullet", "--start", "2025-03-01", "--allow-over-cap"]  # fmt: skip
    result = run(app, args)
    assert result.exit_code == 0
    assert "EXCEEDED" in result.stdout
    assert "warning:" in result.stderr


def test_over_the_cap_has_its_own_exit_code(app):
    args = ["apr", "--principal-fen", "100000", "--rate-bps", "2000", "--term-months", "12",
            "--kind", "bullet", "--start", "2025-03-01"]  # fmt: skip
    result = run(app, args)
    assert result.exit_code == ExitCode.RATE_CAP_EXCEEDED == 6
    assert "exceeds the binding cap" in result.stderr and result.stdout == ""


def test_a_rate_out_of_range_is_a_clear_error_not_a_traceback(app):
    # Issue 17: this ended in decimal.InvalidOperation from the PBoC compound rate.
    args = ["apr", "--principal-yuan", "10000", "--rate-bps", "100000000", "--term-months",
            "12", "--kind", "equal_installment", "--start", "2025-06-01"]  # fmt: skip
    result = run(app, args)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.exit_code == ExitCode.USAGE
    assert "annual rate 100000000 bps is out of range" in result.stderr
    assert "0 to 100,000 bps" in result.stderr
    for rate in ("100000", "0"):  # both ends of the range are accepted
        ok = run(app, [*args[:4], rate, *args[5:], "--allow-over-cap"])
        assert ok.exit_code == 0, ok.stderr


def test_an_annualized_rate_too_large_to_compute_is_refused_by_name():
    from lending.errors import RateOutOfRangeError
    from lending.pricing.apr import pboc_annualized_rate

    with pytest.raises(RateOutOfRangeError, match="too large to compute"):
        pboc_annualized_rate(1, [(10**6, 1, 0)], 12)


_NUMBER = st.one_of(
    st.integers(-(10**12), 10**12).map(str),
    st.sampled_from(
        ["0", "1", "-1", "1e9", "NaN", "inf", "0.5", "", "abc", "99999999999999999999"]
    ),
)
_OPTIONS = {
    "--principal-fen": _NUMBER,
    "--principal-yuan": _NUMBER,
    "--rate-bps": st.one_of(st.integers(-10, 10**9).map(str), _NUMBER),
    "--term-months": st.one_of(st.integers(-1, 700).map(str), _NUMBER),
    "--kind": st.sampled_from(
        [
            "equal_installment",
            "equal-principal",
            "interest_only",
            "bullet",
            "seasonal",
            "weekly",
            "",
        ]
    ),
    "--start": st.sampled_from(
        ["2019-08-19", "2019-08-20", "2025-06-01", "2025-02-30", "9999-12-31", "0001-01-01", "x"]
    ),
    "--upfront-fee-fen": _NUMBER,
    "--periodic-fee-yuan": _NUMBER,
    "--grace-months": st.one_of(st.integers(-1, 700).map(str), _NUMBER),
    "--flush-months": st.sampled_from(["4,5,6", "13", "0", "", "4,4", "x", "1,2,3,4,5,6,7,8,9"]),
    "--penalty-rate-bps": _NUMBER,
    "--hard-cap-bps": _NUMBER,
    "--lpr-multiple": _NUMBER,
    "--cap-basis": st.sampled_from(["strictest", "regz_apr", "pboc_simple", "pboc_compound", "x"]),
}


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    options=st.dictionaries(st.sampled_from(sorted(_OPTIONS)), st.none(), max_size=14).flatmap(
        lambda keys: st.fixed_dictionaries({k: _OPTIONS[k] for k in keys})
    ),
    flags=st.lists(st.sampled_from(["--allow-over-cap", "--no-lpr-cap", "--json"]), unique=True),
)
def test_no_input_to_the_apr_command_ends_in_a_traceback(options, flags):
    app = cli_root(register)
    args = ["apr", *[x for k, v in options.items() for x in (k, v)], *flags]
    result = CliRunner().invoke(app, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        args,
        result.exception,
    )
    assert result.exit_code in {c.value for c in ExitCode} - {ExitCode.ERROR}, args
    if result.exit_code != 0:
        assert result.stderr.strip(), args


def test_the_simple_basis_does_not_let_a_contract_rate_over_the_cap_through(app):
    args = ["apr", "--principal-fen", "1000000", "--rate-bps", "1230", "--term-months", "12",
            "--kind", "bullet", "--start", "2025-06-01", "--cap-basis", "pboc_simple"]  # fmt: skip
    result = run(app, args)
    assert result.exit_code == ExitCode.RATE_CAP_EXCEEDED
    assert "contract rate" in result.stderr and "12.00%" in result.stderr
    at_cap = run(app, [*args[:4], "1200", *args[5:]])
    assert at_cap.exit_code == 0, at_cap.stderr
