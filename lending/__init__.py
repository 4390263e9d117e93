"""Lending: pricing math (no chain), credit decisions on indexed profiles, on-chain loans.

- `lending.pricing`: APR (Reg Z, PBoC), schedules, rate caps, LPR, disclosures;
- `lending.credit`: features, scorecard, decisions with reasons, fairness, the credit store;
- `lending.loans`: escrows and merchant payments, sale settlement, the contracts' errors.

Money is integer fen, rates are basis points (int) or percent (Decimal); no floats anywhere.
"""
