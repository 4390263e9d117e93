"""ConsentRegistry on a real EVM: the farmer's registered wallet grants and revokes, directly or
by an EIP-712 signature that anyone relays."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_utils import keccak

from tests.traceability._system import ZERO, System, reverts
from traceability.consent import CONSENT_GAS, ConsentService
from traceability.errors import ConsentError, UnauthorizedError

DAY = 86_400


def now(system: System) -> int:
    """The chain's latest block time."""
    return system.client.w3.eth.get_block("latest")["timestamp"]


@pytest.fixture
def consent(system: System) -> ConsentService:
    return ConsentService(system.client, system.consent)


@pytest.fixture
def farmer(system: System):
    """(farmer id, its wallet account, a lender address)."""
    wallet = system.client.accounts[6]  # farmers 0 and 3 use dev account 6 (see build_system)
    assert system.tt.functions.farmer(system.farmers[0]).call()[1] == wallet.address
    return system.farmers[0], wallet, system.client.accounts[7].address


def test_wallet_grants_and_revokes(system: System, consent: ConsentService, farmer):
    fid, wallet, lender = farmer
    expires = now(system) + 30 * DAY
    receipt = consent.grant(wallet, fid, lender, expires)
    granted = system.consent.events.ConsentGranted().process_receipt(receipt)
    assert dict(granted[0]["args"]) == {
        "farmer": fid,
        "lender": lender,
        "wallet": wallet.address,
        "expiresAt": expires,
    }
    assert consent.has_consent(fid, lender)
    assert consent.expiry(fid, lender) == expires
    receipt = consent.revoke(wallet, fid, lender)
    revoked = system.consent.events.ConsentRevoked().process_receipt(receipt)
    assert dict(revoked[0]["args"]) == {"farmer": fid, "lender": lender, "wallet": wallet.address}
    assert not consent.has_consent(fid, lender)
    with pytest.raises(ConsentError) as info:
        consent.revoke(wallet, fid, lender)
    assert info.value.name == "ConsentNotGranted"


def test_only_the_farmers_wallet_speaks_for_it(system: System, farmer):
    fid, wallet, lender = farmer
    impostor = system.coop  # even its own cooperative cannot consent for it
    expected = {"farmer": fid, "wallet": wallet.address, "caller": impostor.address}
    with reverts("ConsentNotFarmerWallet", **expected):
        impostor.transact(system.consent.functions.grantConsent(fid, lender, now(system) + DAY))
    with reverts("ConsentNotFarmerWallet", **expected):
        impostor.transact(system.consent.functions.revokeConsent(fid, lender))


def test_a_farmer_without_wallet_cannot_consent(system: System):
    fid = keccak(text="walletless")
    system.coop.transact(system.tt.functions.registerFarmer(fid, ZERO))
    with reverts("ConsentNotFarmerWallet", farmer=fid, wallet=ZERO):
        system.outsider.transact(
            system.consent.functions.grantConsent(fid, system.coop.address, now(system) + DAY)
        )


def test_unknown_and_inactive_farmers(system: System, consent: ConsentService, farmer):
    fid, wallet, lender = farmer
    sender = system.client.sender_for(wallet)
    with reverts("ConsentUnknownFarmer", farmer=b"\x01" * 32):
        sender.transact(
            system.consent.functions.grantConsent(b"\x01" * 32, lender, now(system) + DAY)
        )
    consent.grant(wallet, fid, lender, now(system) + DAY)
    system.coop.transact(system.tt.functions.deactivateFarmer(fid))
    with reverts("ConsentFarmerInactive", farmer=fid):
        sender.transact(system.consent.functions.grantConsent(fid, lender, now(system) + 2 * DAY))
    consent.revoke(wallet, fid, lender)  # withdrawing stays possible
    assert not consent.has_consent(fid, lender)


def test_expiry_bounds_and_lender(system: System, farmer):
    fid, wallet, lender = farmer
    sender = system.client.sender_for(wallet)
    t = now(system)
    for bad in (t - 1, t + 731 * DAY):
        with reverts("ConsentInvalidExpiry", expiresAt=bad):
            sender.transact(system.consent.functions.grantConsent(fid, lender, bad))
    with reverts("ConsentZeroLender"):
        sender.transact(system.consent.functions.grantConsent(fid, ZERO, t + DAY))


def test_consent_lapses_at_expiry(system: System, consent: ConsentService, farmer):
    fid, wallet, lender = farmer
    expires = now(system) + 10 * DAY
    consent.grant(wallet, fid, lender, expires)
    system.client.w3.testing.timeTravel(expires + 1)
    system.client.w3.testing.mine()
    assert not consent.has_consent(fid, lender)
    assert consent.expiry(fid, lender) == expires


def test_signed_consent_relayed_by_the_cooperative(system: System, consent: ConsentService, farmer):
    fid, wallet, lender = farmer
    expires = now(system) + 90 * DAY
    deadline, signature = consent.sign_grant(wallet, fid, lender, expires)
    consent.relay_grant(system.coop, fid, lender, expires, deadline, signature)
    assert consent.has_consent(fid, lender)
    with pytest.raises(ConsentError) as replay:  # the nonce was used up
        consent.relay_grant(system.coop, fid, lender, expires, deadline, signature)
    assert replay.value.name == "ConsentInvalidSignature"
    deadline, signature = consent.sign_revocation(wallet, fid, lender)
    consent.relay_revocation(system.outsider, fid, lender, deadline, signature)
    assert not consent.has_consent(fid, lender)


def test_signatures_must_be_the_wallets_and_fresh(system: System, consent: ConsentService, farmer):
    fid, wallet, lender = farmer
    expires = now(system) + DAY
    stranger = Account.create()
    deadline, forged = consent.sign_grant(stranger, fid, lender, expires)
    with reverts("ConsentInvalidSignature", farmer=fid, wallet=wallet.address):
        system.coop.transact(
            system.consent.functions.grantConsentBySig(fid, lender, expires, deadline, forged)
        )
    stale = now(system) - 1
    _, signature = consent.sign_grant(wallet, fid, lender, expires, deadline=stale)
    with reverts("ConsentSignatureExpired", deadline=stale):
        system.coop.transact(
            system.consent.functions.grantConsentBySig(fid, lender, expires, stale, signature)
        )
    with reverts("ConsentInvalidSignature", farmer=fid, wallet=wallet.address):  # tampered
        deadline, signature = consent.sign_grant(wallet, fid, lender, expires)
        system.coop.transact(
            system.consent.functions.grantConsentBySig(
                fid, lender, expires + 1, deadline, signature
            )
        )


def test_changing_the_wallet_in_tea_trace_moves_the_right(
    system: System, consent: ConsentService, farmer
):
    fid, old_wallet, lender = farmer
    consent.grant(old_wallet, fid, lender, now(system) + DAY)
    new_wallet = system.client.accounts[8]
    system.coop.transact(system.tt.functions.setFarmerWallet(fid, new_wallet.address))
    with pytest.raises(UnauthorizedError):
        consent.revoke(old_wallet, fid, lender)
    consent.revoke(new_wallet, fid, lender)
    assert not consent.has_consent(fid, lender)


def test_domain_separator_matches_eip712(system: System):
    from eth_abi import encode

    domain_type = keccak(
        text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
    )
    expected = keccak(
        encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [
                domain_type,
                keccak(text="TealedgerConsent"),
                keccak(text="1"),
                system.client.w3.eth.chain_id,
                system.consent.address,
            ],
        )
    )
    assert system.consent.functions.DOMAIN_SEPARATOR().call() == expected
    assert system.consent.functions.teaTrace().call() == system.tt.address


def test_a_signed_consent_not_yet_relayed_is_withdrawn_by_burning_the_nonce(
    system: System, consent: ConsentService, farmer
):
    """The old registry had no way to void a signature before its deadline: whoever held it
    could relay it until then, even after the farmer changed its mind."""
    fid, wallet, lender = farmer
    expires = now(system) + 30 * DAY
    deadline, signature = consent.sign_grant(wallet, fid, lender, expires)
    nonce = consent.nonce(wallet.address)
    receipt = consent.burn_nonce(wallet)
    burned = system.consent.events.ConsentNonceBurned().process_receipt(receipt)
    assert dict(burned[0]["args"]) == {"wallet": wallet.address, "nonce": nonce}
    assert consent.nonce(wallet.address) == nonce + 1
    with reverts("ConsentInvalidSignature", farmer=fid, wallet=wallet.address):
        system.coop.transact(
            system.consent.functions.grantConsentBySig(fid, lender, expires, deadline, signature)
        )
    assert not consent.has_consent(fid, lender)


def test_an_old_wallets_signature_stays_void_when_the_wallet_is_set_back(
    system: System, consent: ConsentService, farmer
):
    """The old message had no wallet epoch: a signature of wallet A, made before the
    cooperative moved the farmer to wallet B, came back to life when it set A again."""
    fid, wallet, lender = farmer
    tea = system.tt.functions
    epoch, nonce = tea.walletEpoch(fid).call(), consent.nonce(wallet.address)
    expires = now(system) + 30 * DAY
    deadline, signature = consent.sign_grant(wallet, fid, lender, expires)
    system.coop.transact(tea.setFarmerWallet(fid, system.client.accounts[8].address))
    system.coop.transact(tea.setFarmerWallet(fid, wallet.address))
    assert tea.walletEpoch(fid).call() == epoch + 2
    assert consent.wallet_epoch(fid) == epoch + 2
    assert consent.nonce(wallet.address) == nonce  # only the epoch voids the signature
    with reverts("ConsentInvalidSignature", farmer=fid, wallet=wallet.address):
        system.coop.transact(
            system.consent.functions.grantConsentBySig(fid, lender, expires, deadline, signature)
        )
    deadline, signature = consent.sign_grant(wallet, fid, lender, expires)  # signed anew: valid
    consent.relay_grant(system.coop, fid, lender, expires, deadline, signature)
    assert consent.has_consent(fid, lender)


def test_a_forged_revocation_is_refused(system: System, consent: ConsentService, farmer):
    fid, wallet, lender = farmer
    consent.grant(wallet, fid, lender, now(system) + DAY)
    deadline, forged = consent.sign_revocation(Account.create(), fid, lender)
    with reverts("ConsentInvalidSignature", farmer=fid, wallet=wallet.address):
        system.outsider.transact(
            system.consent.functions.revokeConsentBySig(fid, lender, deadline, forged)
        )
    assert consent.has_consent(fid, lender)


def test_deadlines_count_from_the_chains_clock(system: System, consent: ConsentService, farmer):
    """#18: after a development chain was moved forward (as the demo does), a revocation signed
    with a deadline from the server's clock was already expired on chain."""
    fid, wallet, lender = farmer
    consent.grant(wallet, fid, lender, now(system) + 400 * DAY)
    system.client.w3.testing.timeTravel(now(system) + 100 * DAY)
    system.client.w3.testing.mine()
    deadline, signature = consent.sign_revocation(wallet, fid, lender)
    assert deadline == now(system) + 3600
    consent.relay_revocation(system.outsider, fid, lender, deadline, signature)
    assert not consent.has_consent(fid, lender)


def test_the_relay_gas_bound_covers_a_new_wallets_first_consent(system: System, consent):
    """The costliest relay (a fresh wallet's nonce, a new lender) fits CONSENT_GAS, without
    more than 1.6x to spare."""
    fid, fresh, lender = system.farmers[0], Account.create(), Account.create().address
    system.coop.transact(system.tt.functions.setFarmerWallet(fid, fresh.address))
    expires = now(system) + 90 * DAY
    deadline, signature = consent.sign_grant(fresh, fid, lender, expires)
    call = consent.relay_grant_call(fid, lender, expires, deadline, signature)
    used = system.coop.transact(call, gas=1_000_000)["gasUsed"]
    assert used <= CONSENT_GAS <= used * 16 // 10, used


def test_relays_sent_together_fail_one_by_one_with_the_registrys_error(
    system: System, consent: ConsentService
):
    """Farmers 0 and 3 share a wallet: its two signatures carry one nonce, so the second relay
    fails on chain; it comes back as the named error and the first stands."""
    wallet, lender = system.client.accounts[6], system.client.accounts[7].address
    expires = now(system) + 30 * DAY
    calls = []
    for fid in (system.farmers[0], system.farmers[3]):
        deadline, signature = consent.sign_grant(wallet, fid, lender, expires)
        calls.append(consent.relay_grant_call(fid, lender, expires, deadline, signature))
    first, second = consent.relay_grants(system.coop, calls)
    assert not isinstance(first, Exception) and first["status"] == 1
    assert isinstance(second, ConsentError) and second.name == "ConsentInvalidSignature"
    assert consent.has_consent(system.farmers[0], lender)
    assert not consent.has_consent(system.farmers[3], lender)
