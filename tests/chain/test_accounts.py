"""Accounts: mnemonic-derived dev keys and encrypted keystores."""

import pytest

from chain.accounts import create_keystore, dev_accounts, load_keystore
from chain.config import DEV_MNEMONIC
from chain.errors import KeystoreError


def test_dev_accounts_match_ganache_and_anvil_derivation():
    accounts = dev_accounts(DEV_MNEMONIC, 2)
    assert accounts[0].address == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
    assert accounts[1].address == "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


def test_keystore_round_trip(tmp_path):
    path = tmp_path / "org.json"
    address = create_keystore(path, "s3cret-pass")
    assert load_keystore(path, "s3cret-pass").address == address
    assert oct(path.stat().st_mode)[-3:] == "600"


def test_password_from_environment(tmp_path, monkeypatch):
    path = tmp_path / "org.json"
    address = create_keystore(path, "from-env")
    monkeypatch.setenv("TEALEDGER_KEYSTORE_PASSWORD", "from-env")
    assert load_keystore(path).address == address


def test_wrong_password_is_a_clear_error(tmp_path):
    path = tmp_path / "org.json"
    create_keystore(path, "right")
    with pytest.raises(KeystoreError, match="wrong password"):
        load_keystore(path, "wrong")


def test_missing_password_and_file(tmp_path, monkeypatch):
    monkeypatch.delenv("TEALEDGER_KEYSTORE_PASSWORD", raising=False)
    with pytest.raises(KeystoreError, match="TEALEDGER_KEYSTORE_PASSWORD"):
        load_keystore(tmp_path / "x.json")
    with pytest.raises(KeystoreError, match="does not exist"):
        load_keystore(tmp_path / "x.json", "pw")
    with pytest.raises(KeystoreError, match="empty password"):
        create_keystore(tmp_path / "y.json", "")


def test_sender_repr_hides_key(embedded):
    sender = embedded.sender(0)
    key_hex = embedded.accounts[0].key.hex()
    assert key_hex not in repr(sender)
    assert sender.address in repr(sender)
