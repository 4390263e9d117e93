"""The rules, one module per family; importing this package registers them all."""

from risk.detectors import cash_out  # noqa: F401
