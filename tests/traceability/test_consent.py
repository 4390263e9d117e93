"""ConsentService.granted_lenders: every lender a farmer ever granted, from ConsentGranted."""

from __future__ import annotations

from tests.traceability._system import System
from traceability.consent import ConsentService

DAY = 86_400


def test_granted_lenders_in_order_of_first_grant(system: System) -> None:
    consent = ConsentService(system.client, system.consent)
    farmer, other = system.farmers[0], system.farmers[1]
    wallet = system.client.accounts[6]  # farmer 0's wallet (build_system)
    other_wallet = system.client.accounts[7]  # farmer 1's
    a, b, c = (system.client.accounts[i].address for i in (2, 3, 4))
    expires = system.client.w3.eth.get_block("latest")["timestamp"] + 30 * DAY
    assert consent.granted_lenders(farmer) == []
    consent.grant(wallet, farmer, b, expires)
    consent.grant(wallet, farmer, a, expires)
    consent.grant(wallet, farmer, b, expires + DAY)
    consent.revoke(wallet, farmer, a)
    consent.grant(other_wallet, other, c, expires)
    assert consent.granted_lenders(farmer) == [b, a]  # revoked ones too: the caller checks
    assert consent.granted_lenders("0x" + other.hex()) == [c]
    # The registered deployment, read from its deployment block, answers the same.
    assert ConsentService(system.client).granted_lenders(farmer) == [b, a]
