"""PaymentToken through brownie, against its development network (anvil)."""

import brownie
from brownie import web3


def test_amounts_are_fen(token):
    assert token.decimals() == 2


def test_admin_mints_and_event_is_emitted(token, admin, accounts):
    tx = token.mint(accounts[1], 12_345, {"from": admin})
    assert token.balanceOf(accounts[1]) == 12_345
    assert tx.events["PaymentTokenMinted"]["amount"] == 12_345


def test_stranger_cannot_mint(token, accounts):
    stranger = accounts[2]
    # brownie decodes the project's custom errors by name, arguments included.
    pattern = rf"AccessControlUnauthorizedAccount: {stranger.address.lower()}, .*"
    with brownie.reverts(revert_pattern=pattern):
        token.mint(accounts[3], 1, {"from": stranger})


def test_zero_amount_is_refused(token, admin, accounts):
    with brownie.reverts("PaymentTokenZeroAmount: "):
        token.mint(accounts[1], 0, {"from": admin})


def test_role_constant_matches(token):
    assert token.MINTER_ROLE() == "0x" + web3.keccak(text="MINTER_ROLE").hex().removeprefix("0x")
