"""API keys: high-entropy secrets, looked up by SHA-256, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlmodel import Session, select

from api.core.models import ApiKey, Organisation, utcnow

KEY_PREFIX = "tl_"


@dataclass(frozen=True)
class NewKey:
    """A freshly minted key: the secret and what is stored of it."""

    secret: str
    record: ApiKey


def hash_key(secret: str) -> str:
    """SHA-256 hex: enough for 256-bit random secrets (no password stretching needed)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def mint_key(organisation_id: int) -> NewKey:
    """A new key `tl_<8-char prefix>_<43-char secret>` for an organisation."""
    prefix = secrets.token_hex(4)
    secret = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    record = ApiKey(organisation_id=organisation_id, prefix=prefix, key_hash=hash_key(secret))
    return NewKey(secret, record)


def authenticate(session: Session, secret: str) -> Organisation | None:
    """The active organisation owning an unrevoked key, or None."""
    digest = hash_key(secret)
    # One query for the key and its organisation: this runs on every request.
    found = session.exec(
        select(ApiKey.key_hash, ApiKey.revoked_at, Organisation)
        .join(Organisation, Organisation.id == ApiKey.organisation_id)  # type: ignore[arg-type]
        .where(ApiKey.key_hash == digest)
    ).first()
    if found is None:
        return None
    key_hash, revoked_at, org = found
    if revoked_at is not None or not hmac.compare_digest(key_hash, digest):
        return None
    return org if org.active else None


def revoke(session: Session, key: ApiKey) -> None:
    """Mark a key revoked (kept for the audit trail)."""
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        session.add(key)
        session.commit()
