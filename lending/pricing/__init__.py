"""Lending math for tealedger: APR disclosure, repayment schedules and rate caps.

Money is integer fen, rates are basis points (int) or percent (Decimal); no floats anywhere.
"""

from lending.errors import LendingError
from lending.pricing.apr import PbocRate, actuarial_apr, pboc_annualized_rate
from lending.pricing.caps import (
    CapBasis,
    CapCheck,
    CapPolicy,
    binding_cap,
    check_penalty_rate_cap,
    check_rate_cap,
    evaluate_rate_cap,
)
from lending.pricing.disclosure import Disclosure, disclose
from lending.pricing.lpr import LprFixing, LprQuote, LprTable, load_lpr_table, lpr_on
from lending.pricing.regz_dates import (
    LocatedCashFlows,
    UnitPeriod,
    actuarial_apr_dated,
    locate_cash_flows,
)
from lending.pricing.schedule import (
    TEA_FLUSH_MONTHS,
    Installment,
    Schedule,
    ScheduleKind,
    ScheduleTerms,
    build_schedule,
)

__all__ = [
    "TEA_FLUSH_MONTHS",
    "CapBasis",
    "CapCheck",
    "CapPolicy",
    "Disclosure",
    "Installment",
    "LendingError",
    "LocatedCashFlows",
    "LprFixing",
    "LprQuote",
    "LprTable",
    "PbocRate",
    "Schedule",
    "ScheduleKind",
    "ScheduleTerms",
    "UnitPeriod",
    "actuarial_apr",
    "actuarial_apr_dated",
    "binding_cap",
    "build_schedule",
    "check_penalty_rate_cap",
    "check_rate_cap",
    "disclose",
    "evaluate_rate_cap",
    "load_lpr_table",
    "locate_cash_flows",
    "lpr_on",
    "pboc_annualized_rate",
]
