"""Signing keys: development accounts from a mnemonic, encrypted JSON keystores otherwise."""

from __future__ import annotations

import json
import os
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from chain.errors import KeystoreError

Account.enable_unaudited_hdwallet_features()

HD_PATH = "m/44'/60'/0'/0/{index}"
PASSWORD_ENV = "TEALEDGER_KEYSTORE_PASSWORD"


def dev_accounts(mnemonic: str, count: int = 10) -> list[LocalAccount]:
    """The first `count` accounts of a BIP-44 mnemonic (ganache's and anvil's derivation)."""
    return [
        Account.from_mnemonic(mnemonic, account_path=HD_PATH.format(index=i)) for i in range(count)
    ]


def create_keystore(path: Path, password: str, private_key: bytes | None = None) -> str:
    """Write an encrypted keystore (new random key unless given); return its address."""
    if not password:
        raise KeystoreError(f"refusing to write keystore {path} with an empty password")
    account = Account.from_key(private_key) if private_key else Account.create()
    encrypted = Account.encrypt(account.key, password)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(encrypted))
    os.chmod(tmp, 0o600)
    tmp.replace(path)
    return account.address


def load_keystore(path: Path, password: str | None = None) -> LocalAccount:
    """Decrypt a keystore with `password` (default: $TEALEDGER_KEYSTORE_PASSWORD)."""
    password = password if password is not None else os.environ.get(PASSWORD_ENV)
    if not password:
        raise KeystoreError(f"keystore {path} needs a password: set {PASSWORD_ENV}")
    try:
        encrypted = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise KeystoreError(f"keystore {path} does not exist") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise KeystoreError(f"keystore {path} is not a readable JSON keystore: {exc}") from None
    try:
        key = Account.decrypt(encrypted, password)
    except ValueError:
        raise KeystoreError(
            f"wrong password for keystore {path} (address 0x{encrypted.get('address', '?')}): "
            f"check {PASSWORD_ENV}"
        ) from None
    return Account.from_key(key)
