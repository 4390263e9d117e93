"""Creating organisations: a database row, a signing key in a keystore, a first API key."""

from __future__ import annotations

from pathlib import Path

from eth_account import Account
from sqlmodel import Session

from api.core.models import Organisation, OrganisationCreate
from api.core.security import NewKey, mint_key
from chain.accounts import create_keystore


def keystore_path(keystore_dir: Path, org_id: int) -> Path:
    """Where an organisation's encrypted key lives."""
    return keystore_dir / f"org-{org_id}.json"


def create_organisation(
    session: Session,
    body: OrganisationCreate,
    keystore_dir: Path,
    password: str,
    private_key: bytes | None = None,
) -> tuple[Organisation, NewKey]:
    """Create the organisation with a chain key (new unless given, encrypted at rest) and a key."""
    account = Account.from_key(private_key) if private_key else Account.create()
    org = Organisation(name=body.name, role=body.role, chain_address=account.address)
    session.add(org)
    session.flush()  # assigns the id used to name the keystore
    assert org.id is not None
    create_keystore(keystore_path(keystore_dir, org.id), password, bytes(account.key))
    key = mint_key(org.id)
    session.add(key.record)
    session.commit()
    session.refresh(org)
    session.refresh(key.record)
    return org, key
