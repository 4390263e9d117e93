"""Creating organisations: a database row, a signing key in a keystore, a first API key."""

from __future__ import annotations

from pathlib import Path

from eth_account import Account
from sqlmodel import Session

from api.models import Organisation, OrganisationCreate
from api.security import NewKey, mint_key
from chain.accounts import create_keystore


def keystore_path(keystore_dir: Path, org_id: int) -> Path:
    """Where an organisation's encrypted key lives."""
    return keystore_dir / f"org-{org_id}.json"


def create_organisation(
    session: Session, body: OrganisationCreate, keystore_dir: Path, password: str
) -> tuple[Organisation, NewKey]:
    """Create the organisation with a new chain key (encrypted at rest) and a first API key."""
    account = Account.create()
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
