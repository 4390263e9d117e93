"""`tealedger apr` through typer's CliRunner on an app built here."""

import json
from decimal import Decimal

import pytest
import typer
from typer.testing import CliRunner

from lending.pricing.cli import register

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
    root = typer.Typer()

    @root.callback()
    def main() -> None:
        """Root stands in for the tealedger app (a callback keeps subcommands)."""

    register(root)
    return root


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
        (["--principal-fen", "100000", "--rate-bps", "2000"], "exceeds the binding cap"),
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
    assert result.exit_code == 2
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
