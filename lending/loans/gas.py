"""Measured gas limits for lending calls, sent instead of asking eth_estimateGas.

ganache re-runs a transaction for every eth_estimateGas, and slowly: in the demo's profile an
estimate of an issue or an order took ~400 ms where an eth_call of it took ~8 ms and sending and
mining it ~40 ms, so estimates were most of the lending's time. Each bound is about 1.3x (or
more) the worst case that tests/contracts/test_settlement_gas.py and
tests/contracts/test_loan_escrow.py measure (fresh wallets, first sales, loans closed by the
sale); bounds past chain.sender.MAX_BOUND_GAS are left to the node's estimate.

Pipelined bulk sends (the demo, the batch routes) send with them unchecked, where a
transaction cannot be checked before the one ahead of it is mined anyway. Single calls from the
desks and the service send with them after an eth_call of the very transaction
(`Sender.send(..., preflight=True)`), so a call that would revert is still refused with its
named error and nothing is sent; calls without a bound here keep eth_estimateGas.
"""

from __future__ import annotations

from chain.sender import bounded

# (per transaction, per farmer share)
COMMIT_GAS: tuple[int, int] = (100_000, 10_500)  # measured 83k + 8.0k per share
# (per transaction, per farmer share, per share whose farmer has an open loan)
SETTLE_GAS: tuple[int, int, int] = (120_000, 55_000, 80_000)  # 80k + 42.7k + 61.6k
# (per transaction, per budget category)
ISSUE_GAS: tuple[int, int] = (500_000, 50_000)  # ~570k with 4 categories, acceptance included
# returnUnspent: 92k (drawn from) to 115k (undrawn: the return closes the loan) measured, and
# anvil estimates 124k for the latter (the token call needs its 1/64 kept back)
RETURN_UNSPENT_GAS = 160_000
STATUS_GAS = 80_000  # refreshStatus, declareDefault, writeOff: 36k to 45k measured
ORDER_GAS = 400_000  # orderPayment: 134k (first immediate payment) to 185k (reserved) measured
APPROVE_GAS = 100_000  # PaymentToken.approve: ~46k into a fresh allowance slot
REPAY_GAS = 150_000  # repay: 67k (partial) to 72k (final, closes the loan) measured
MINT_GAS = 150_000  # PaymentToken.mint (development eCNY): ~70k to a fresh holder


def commit_gas(shares: int) -> int | None:
    """A safe gas limit for commitShares of `shares` farmers (None: estimate it)."""
    per_tx, per_share = COMMIT_GAS
    return bounded(per_tx + per_share * shares)


def settle_bound(shares: int, loans: int) -> int:
    """Enough gas for settleSale over `shares` farmers, `loans` of them owing."""
    per_tx, per_share, per_loan = SETTLE_GAS
    return per_tx + per_share * shares + per_loan * loans


def settle_gas(shares: int, loans: int) -> int | None:
    """A safe gas limit for settleSale (None: past the cap, estimate it)."""
    return bounded(settle_bound(shares, loans))


def issue_gas(categories: int) -> int:
    """A safe gas limit for issueAndFundLoan with `categories` budget categories."""
    per_tx, per_category = ISSUE_GAS
    return per_tx + per_category * categories
