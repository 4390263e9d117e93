"""Errors raised by the lending package; every one derives from LendingError.

This is the one home of lending's errors except the loan contracts' (lending.loans.errors,
which needs the chain layer). It imports nothing but the standard library, so lending.pricing
can raise these without pulling in chain, indexer or web3.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from enum import IntEnum
from typing import Protocol


class ExitCode(IntEnum):
    """Exit codes of every `tealedger` command, one meaning each (docs/lending-math.md).

    1 is what Python exits with on an unhandled exception, so no deliberate outcome uses it:
    a script can tell a crash from a failed check.
    """

    OK = 0
    ERROR = 1
    """An error with no code of its own (an unreachable chain node, a crash)."""
    USAGE = 2
    """Invalid input or usage: a bad option, value, file or unknown id (click's code too)."""
    FAIRNESS_FAILED = 3
    """The fairness report ran and a ratio is below its threshold: do not deploy."""
    REPLAY_MISMATCH = 4
    """A stored decision does not recompute to what was stored."""
    STALE_DATA = 5
    """Reference data (the LPR table) does not cover the date asked for: update it first."""
    RATE_CAP_EXCEEDED = 6
    """The offer's annualized rate is above the binding legal cap."""


class LendingError(Exception):
    """Root of every error the lending package raises on purpose."""


class InvalidCashFlowError(LendingError):
    """Cash flows that cannot define an APR (empty, negative, never repaid, bad timing)."""


class InvalidLoanTermsError(LendingError):
    """Loan terms that cannot produce a repayment schedule."""


class InvalidAmountError(LendingError):
    """A money amount that is not a whole, non-negative number of fen."""


class InvalidRateError(LendingError):
    """A rate that is not a non-negative int of basis points or Decimal percent."""


class RateOutOfRangeError(InvalidRateError):
    """A rate outside the range the calculator accepts (or an annualized rate too large)."""


class RootFindingError(LendingError):
    """The rate solver could not bracket or verify a root."""


class RateCapExceededError(LendingError):
    """An annualized rate above the binding legal cap."""

    def __init__(
        self,
        rate_pct: Decimal,
        cap_pct: Decimal,
        rule: str,
        contract_date: date,
        what: str = "annualized rate",
    ) -> None:
        self.rate_pct = rate_pct
        self.cap_pct = cap_pct
        self.rule = rule
        self.contract_date = contract_date
        super().__init__(
            f"{what} {rate_pct:.4f}% exceeds the binding cap {cap_pct}% (rule {rule}, "
            f"contract date {contract_date.isoformat()}); lower the interest rate or fees "
            f"until it is at most {cap_pct}%"
        )


class PenaltyRateCapExceededError(RateCapExceededError):
    """Contract rate plus late-payment penalty rate above the binding cap."""


class LprTableError(LendingError):
    """A malformed LPR table."""


class LprDateOutOfRangeError(LprTableError):
    """A contract date before the first fixing in the LPR table."""


LPR_UPDATE_COMMAND = "tealedger lpr update --date YYYY-MM-DD --one-year-bps N --five-year-bps N"
"""How a user records a newly published LPR fixing (lending.pricing.lpr_cli)."""


class StaleLprTableError(LprTableError):
    """A contract date after the LPR table's validity: the fixing in force may be newer."""

    def __init__(self, on: date, valid_through: date, table_version: str, where: str) -> None:
        self.on = on
        self.valid_through = valid_through
        self.table_version = table_version
        super().__init__(
            f"the LPR table {table_version} ({where}) is valid through "
            f"{valid_through.isoformat()}, before the contract date {on.isoformat()}: a newer "
            "fixing may be in force, so nothing is priced against it. Record the fixings "
            f"published since with `{LPR_UPDATE_COMMAND}` (see `tealedger lpr show`)"
        )


# ----------------------------------------------------------------------------- credit


class CreditError(LendingError):
    """Root of the errors of credit scoring, decisions and fairness reporting."""


class ProfileDataError(CreditError):
    """A profile field is missing or invalid: the farmer cannot be scored until it is fixed."""

    def __init__(self, field: str, problem: str, farmer_id: str | None = None) -> None:
        self.field = field
        self.farmer_id = farmer_id
        who = f"profile of farmer {farmer_id}" if farmer_id else "profile"
        super().__init__(
            f"{who}: field {field!r} {problem}; no decision was made: rebuild the profile "
            "from the indexer (indexer/profiles.py) and apply again"
        )


class ModelError(CreditError):
    """A scorecard file is missing, malformed, not monotone or altered after fitting."""


class ConsentRequiredError(CreditError):
    """The farmer has no active on-chain consent for this lender: no profile read, no score."""

    def __init__(self, farmer_id: str, lender: str) -> None:
        self.farmer_id = farmer_id
        self.lender = lender
        super().__init__(
            f"farmer {farmer_id} has not given lender {lender} an active consent in the "
            "ConsentRegistry; nothing was read or scored: ask the farmer to grant consent "
            "(grantConsent or a signed grantConsentBySig) and apply again"
        )


class ConsentCheckError(CreditError):
    """Consent could not be checked (chain unreachable): refused, since consent is unproven."""


class InvalidRequestError(CreditError):
    """A decision request with a malformed farmer id or lender address."""


class ProfileNotFoundError(CreditError):
    """No profile exists for the farmer."""


class ReplayMismatchError(CreditError):
    """Recomputing a stored decision gave a different result."""

    def __init__(self, decision_id: str, differences: Sequence[str]) -> None:
        self.decision_id = decision_id
        self.differences = tuple(differences)
        super().__init__(
            f"decision {decision_id} does not replay: {', '.join(differences)} differ; check "
            "the model file, policy and LPR table versions the decision names"
        )


class DecisionStoreError(CreditError):
    """Base of errors reading or writing stored decisions."""


class DecisionNotFoundError(DecisionStoreError):
    """No stored decision has this id."""


class ImmutableRecordError(DecisionStoreError):
    """Something tried to change or delete an insert-only row."""


class RecordTamperedError(DecisionStoreError):
    """A stored row's content no longer matches the hash stored with it."""


class _RatioFailure(Protocol):
    """A failed fairness ratio check (lending.credit.fairness.RatioCheck)."""

    def describe(self) -> str:
        """One line saying which ratio failed and by how much."""
        ...


class FairnessPopulationTooSmallError(CreditError):
    """The simulated population is too small for the fairness ratios to mean anything."""


class GroupsFileError(CreditError):
    """An operator's groups file (farmer_id plus attributes) that cannot be used as it is."""


class FairnessThresholdError(CreditError):
    """A fairness ratio is below its configured threshold."""

    def __init__(self, failures: Sequence[_RatioFailure]) -> None:
        self.failures = tuple(failures)
        parts = [f.describe() for f in failures]
        super().__init__(
            "fairness report failed: " + "; ".join(parts) + ". Do not deploy this model/policy: "
            "find the feature or rule that acts as a proxy of the attribute and remove it"
        )


# ----------------------------------------------------------------------------- loan offers


class LoanOfferError(LendingError):
    """A credit decision that cannot become the loan asked for."""


class DecisionNotApprovedError(LoanOfferError):
    """Only an approved decision with an offered rate can become a loan."""


class DecisionExpiredError(LoanOfferError):
    """The decision is older than the days an offer stands."""


class PrincipalOverLimitError(LoanOfferError):
    """The budgets ask for more than the decision's limit."""


class BudgetsNotFinancedError(LoanOfferError):
    """The budgets do not add up to the amount financed (principal less the upfront fee)."""


def exit_code_for(exc: BaseException) -> ExitCode:
    """The exit code a command ends with for a lending error (ERROR for anything else)."""
    for kind, code in _EXIT_CODES:
        if isinstance(exc, kind):
            return code
    return ExitCode.ERROR


_EXIT_CODES: tuple[tuple[type[BaseException], ExitCode], ...] = (
    (StaleLprTableError, ExitCode.STALE_DATA),
    (FairnessThresholdError, ExitCode.FAIRNESS_FAILED),
    (ReplayMismatchError, ExitCode.REPLAY_MISMATCH),
    (RateCapExceededError, ExitCode.RATE_CAP_EXCEEDED),
    (LendingError, ExitCode.USAGE),
)
"""Most specific first: every other lending error is about the input given."""
