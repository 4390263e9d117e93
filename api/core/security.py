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
    key = session.exec(select(ApiKey).where(ApiKey.key_hash == digest)).first()
    if key is None or key.revoked_at is not None:
        return None
    if not hmac.compare_digest(key.key_hash, digest):
        return None
    org = session.get(Organisation, key.organisation_id)
    return org if org is not None and org.active else None


def revoke(session: Session, key: ApiKey) -> None:
    """Mark a key revoked (kept for the audit trail)."""
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        session.add(key)
        session.commit()
