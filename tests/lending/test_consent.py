"""Consent on chain: a lender scores a farmer only while the ConsentRegistry says it may."""

from datetime import date

import pytest

from lending.credit.access import AccessOutcome, MappingProfileReader, MemoryAccessLog
from lending.credit.decision import decide
from lending.credit.simulation import simulate_population
from lending.errors import ConsentCheckError, ConsentRequiredError
from traceability.consent import ConsentService

FARMER = simulate_population(6, 1, "fairness").farmers[0]
FARMER_ID = bytes.fromhex(FARMER.farmer_id[2:])
MAX_YIELD_BPS = 3_000


@pytest.fixture
def chain(embedded):
    """TeaTrace with one registered farmer (wallet = account 2) and a ConsentRegistry."""
    admin, coop, wallet = embedded.accounts[:3]
    embedded.deploy("TeaTrace", (admin.address, MAX_YIELD_BPS))
    trace = embedded.contract("TeaTrace")
    role = trace.functions.COOPERATIVE_ROLE().call()
    embedded.sender(0).transact(trace.functions.grantRole(role, coop.address))
    embedded.sender(1).transact(trace.functions.registerFarmer(FARMER_ID, wallet.address))
    embedded.deploy("ConsentRegistry", (trace.address,))
    return embedded


def _lender(chain, index=3):
    return chain.accounts[index].address


def _now(chain):
    return chain.w3.eth.get_block("latest")["timestamp"]


def _grant(chain, lender, seconds=86_400):
    registry = chain.contract("ConsentRegistry")
    expiry = _now(chain) + seconds
    chain.sender(2).transact(registry.functions.grantConsent(FARMER_ID, lender, expiry))


def _decide(chain, lender, log=None, consent=None):
    return decide(
        FARMER.farmer_id, lender,
        profiles=MappingProfileReader({FARMER.farmer_id: FARMER.profile}),
        consent=consent if consent is not None else ConsentService(chain),
        access_log=log if log is not None else MemoryAccessLog(),
        contract_date=date(2025, 12, 1),
    )  # fmt: skip


def test_no_consent_no_decision(chain):
    log = MemoryAccessLog()
    with pytest.raises(ConsentRequiredError):
        _decide(chain, _lender(chain), log)
    assert [e.outcome for e in log.entries] == [AccessOutcome.REFUSED_NO_CONSENT]


def test_granted_consent_allows_scoring_until_revoked(chain):
    lender = _lender(chain)
    _grant(chain, lender)
    checker = ConsentService(chain)
    assert checker.has_consent(FARMER.farmer_id, lender)
    record = _decide(chain, lender)
    assert record.lender == lender.lower()
    assert record.decision.farmer_id == FARMER.farmer_id

    registry = chain.contract("ConsentRegistry")
    chain.sender(2).transact(registry.functions.revokeConsent(FARMER_ID, lender))
    assert not checker.has_consent(FARMER.farmer_id, lender)
    with pytest.raises(ConsentRequiredError):
        _decide(chain, lender)


def test_consent_lapses_at_its_expiry(chain):
    lender = _lender(chain)
    _grant(chain, lender, seconds=3_600)
    _decide(chain, lender)
    chain.w3.provider.ethereum_tester.time_travel(_now(chain) + 7_200)
    with pytest.raises(ConsentRequiredError):
        _decide(chain, lender)


def test_consent_is_per_lender(chain):
    _grant(chain, _lender(chain, 3))
    _decide(chain, _lender(chain, 3))
    with pytest.raises(ConsentRequiredError):
        _decide(chain, _lender(chain, 4))


def test_unreadable_registry_fails_closed(chain):
    no_code = chain.w3.eth.contract(
        address=chain.accounts[5].address, abi=chain.contract("ConsentRegistry").abi
    )
    log = MemoryAccessLog()
    with pytest.raises(ConsentCheckError, match="no decision was made"):
        _decide(chain, _lender(chain), log, consent=ConsentService(chain, no_code))
    assert log.entries == []  # consent unproven: nothing read, nothing logged as read
