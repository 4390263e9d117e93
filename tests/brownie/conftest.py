"""brownie fixtures: every test runs on a chain snapshot that is reverted afterwards."""

import pytest


@pytest.fixture(autouse=True)
def isolation(fn_isolation):
    """Revert the chain after each test (brownie's fn_isolation)."""


@pytest.fixture
def admin(accounts):
    """The deployer, holding the admin and minter roles."""
    return accounts[0]


@pytest.fixture
def token(PaymentToken, admin):
    """A fresh payment token."""
    return PaymentToken.deploy("Digital Yuan (test)", "eCNY", admin, {"from": admin})
