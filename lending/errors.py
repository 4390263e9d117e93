"""Errors raised by the lending package; every one derives from LendingError."""

from __future__ import annotations

from datetime import date
from decimal import Decimal


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
