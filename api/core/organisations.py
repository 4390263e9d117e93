"""Organisations: creating one (a database row, a signing key in a keystore, a first API key)
and finding one named in a request."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from eth_account import Account
from sqlmodel import Session

from api.core.errors import Invalid, NotFound
from api.core.models import Organisation, OrganisationCreate, Role
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


def find_organisation(
    session: Session, org_id: int, roles: Collection[Role], what: str
) -> Organisation:
    """An active organisation of one of `roles`: 404 if unknown, 422 if of another kind."""
    org = session.get(Organisation, org_id)
    if org is None or not org.active:
        raise NotFound(f"organisation {org_id} does not exist")
    if org.role not in roles:
        raise Invalid(f"organisation {org_id} is a {org.role.value}, not a {what}")
    return org
