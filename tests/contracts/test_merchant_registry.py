"""MerchantRegistry: categories, approvals with expiry, revocation, roles."""

from __future__ import annotations

import pytest
from eth_utils import keccak

from lending.loans import errors as loan_errors
from lending.loans.disbursement import events_of
from tests.contracts import conftest_loans
from tests.contracts.conftest_loans import (
    ADMIN,
    DAY,
    FERTILIZER,
    MERCHANT,
    OUTSIDER,
    REGISTRAR,
    LoanSystem,
    raw,
    reverts,
)

loans_module, loans = conftest_loans.loans_module, conftest_loans.loans  # shared fixtures

REGISTRAR_ROLE = keccak(text="REGISTRAR_ROLE")
ZERO = "0x" + "00" * 20


def test_category_id_is_keccak_of_the_name(loans: LoanSystem):
    r = loans.registry.functions
    assert r.categoryId("fertilizer").call() == FERTILIZER == keccak(text="fertilizer")
    assert r.isCategory(FERTILIZER).call()
    assert not r.isCategory(keccak(text="cash")).call()
    assert loans.merchants.category_names()[FERTILIZER] == "fertilizer"


def test_register_category_emits_and_refuses_duplicates_and_empty_names(loans: LoanSystem):
    receipt = raw(loans, REGISTRAR, loans.registry.functions.registerCategory("drip irrigation"))
    event = events_of(loans.registry, "CategoryRegistered", receipt)[0]["args"]
    assert event["category"] == keccak(text="drip irrigation")
    assert event["registrar"] == loans.addr(REGISTRAR)
    assert event["name"] == "drip irrigation"
    with reverts("MerchantRegistryCategoryExists", category=FERTILIZER):
        raw(loans, REGISTRAR, loans.registry.functions.registerCategory("fertilizer"))
    with reverts("MerchantRegistryEmptyCategoryName"):
        raw(loans, REGISTRAR, loans.registry.functions.registerCategory(""))


def test_approval_until_expiry(loans: LoanSystem):
    shop = loans.addr(OUTSIDER)
    expires = loans.now() + 5 * DAY
    receipt = loans.merchants.approve(shop, "fertilizer", expires, loans.sender(REGISTRAR))
    event = events_of(loans.registry, "MerchantApproved", receipt)[0]["args"]
    assert (event["merchant"], event["category"], event["expiresAt"]) == (shop, FERTILIZER, expires)
    assert event["registrar"] == loans.addr(REGISTRAR)
    assert loans.merchants.is_approved(shop, "fertilizer")
    assert not loans.merchants.is_approved(shop, "seedlings")  # approvals are per category
    record = loans.merchants.approval(shop, FERTILIZER)
    assert record.expires_at == expires and not record.revoked
    loans.travel(5 * DAY)
    assert not loans.merchants.is_approved(shop, "fertilizer")  # expired at expiresAt


def test_approve_refuses_unknown_category_zero_address_and_past_expiry(loans: LoanSystem):
    r, now = loans.registry.functions, loans.now()
    cash = keccak(text="cash")
    with reverts("MerchantRegistryUnknownCategory", category=cash):
        raw(loans, REGISTRAR, r.approveMerchant(loans.addr(OUTSIDER), cash, now + DAY))
    with reverts("MerchantRegistryZeroAddress"):
        raw(loans, REGISTRAR, r.approveMerchant(ZERO, FERTILIZER, now + DAY))
    with reverts("MerchantRegistryExpiryNotInFuture", expiresAt=now - 1):
        raw(loans, REGISTRAR, r.approveMerchant(loans.addr(OUTSIDER), FERTILIZER, now - 1))


def test_revocation_and_renewal(loans: LoanSystem):
    shop, registrar = loans.addr(MERCHANT), loans.sender(REGISTRAR)
    reason = keccak(text="sold counterfeit fertilizer")
    receipt = loans.merchants.revoke(shop, "fertilizer", registrar, reason)
    event = events_of(loans.registry, "MerchantRevoked", receipt)[0]["args"]
    assert event["reasonHash"] == reason and event["merchant"] == shop
    assert not loans.merchants.is_approved(shop, "fertilizer")
    assert loans.merchants.is_approved(shop, "seedlings")  # other categories unaffected
    with pytest.raises(loan_errors.MerchantRegistryError) as info:
        loans.merchants.revoke(shop, "fertilizer", registrar)
    assert info.value.name == "MerchantRegistryNotApproved"
    assert info.value.merchant == shop and info.value.category == FERTILIZER
    loans.merchants.approve(shop, "fertilizer", loans.now() + DAY, registrar)  # renewal lifts it
    assert loans.merchants.is_approved(shop, "fertilizer")


@pytest.mark.parametrize(
    "call",
    [
        lambda r, a: r.registerCategory("cash"),
        lambda r, a: r.approveMerchant(a, FERTILIZER, 2**40),
        lambda r, a: r.revokeMerchant(a, FERTILIZER, bytes(32)),
    ],
    ids=["registerCategory", "approveMerchant", "revokeMerchant"],
)
def test_registrar_functions_refuse_other_callers(loans: LoanSystem, call):
    fn = call(loans.registry.functions, loans.addr(MERCHANT))
    with reverts(
        "AccessControlUnauthorizedAccount", account=loans.addr(OUTSIDER), neededRole=REGISTRAR_ROLE
    ):
        raw(loans, OUTSIDER, fn)


def test_roles_are_granted_by_the_admin_and_never_to_oneself(loans: LoanSystem):
    r = loans.registry.functions
    outsider = loans.addr(OUTSIDER)
    with reverts("AccessControlUnauthorizedAccount", account=outsider, neededRole=bytes(32)):
        raw(loans, OUTSIDER, r.grantRole(REGISTRAR_ROLE, outsider))
    with reverts("MerchantRegistrySelfGrant", role=REGISTRAR_ROLE, account=loans.addr(ADMIN)):
        raw(loans, ADMIN, r.grantRole(REGISTRAR_ROLE, loans.addr(ADMIN)))


def test_only_the_admin_revokes_roles(loans: LoanSystem):
    r, registrar = loans.registry.functions, loans.addr(REGISTRAR)
    for who in (OUTSIDER, REGISTRAR):
        with reverts(
            "AccessControlUnauthorizedAccount", account=loans.addr(who), neededRole=bytes(32)
        ):
            raw(loans, who, r.revokeRole(REGISTRAR_ROLE, registrar))
    assert r.hasRole(REGISTRAR_ROLE, registrar).call()


def test_python_errors_keep_the_contract_name_and_values(loans: LoanSystem):
    with pytest.raises(loan_errors.MerchantRegistryError) as info:
        loans.merchants.register_category("fertilizer", loans.sender(REGISTRAR))
    assert info.value.name == "MerchantRegistryCategoryExists"
    assert info.value.category == FERTILIZER
    assert isinstance(info.value, loan_errors.MerchantRegistryError)
    assert isinstance(info.value, loan_errors.LoanError)
    with pytest.raises(loan_errors.AccessError) as denied:
        loans.merchants.register_category("cash", loans.sender(OUTSIDER))
    assert denied.value.name == "AccessControlUnauthorizedAccount"
    assert denied.value.neededRole == REGISTRAR_ROLE
