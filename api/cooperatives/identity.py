"""Pseudonyms of a cooperative's farmers and plots, keyed by a per-cooperative salt.

salt(coop) = HMAC-SHA256(pseudonym_secret, "tealedger.coop-salt.v1:" + coop chain address)

The server secret never leaves the service and each cooperative's salt differs, so a farmer's
pseudonym cannot be recomputed from a national id by anyone else, nor linked across
cooperatives. Changing `pseudonym_secret` would give every person a new pseudonym: never do it.
"""

from __future__ import annotations

import hashlib
import hmac

from api.core.models import Organisation
from api.core.settings import ApiSettings
from traceability.ids import farmer_id, location_hash, plot_id

SALT_LABEL = "tealedger.coop-salt.v1:"


def coop_salt(settings: ApiSettings, coop: Organisation) -> bytes:
    """The cooperative's 32-byte salt."""
    return salt_of_address(settings, coop.chain_address)


def salt_of_address(settings: ApiSettings, address: str) -> bytes:
    """The 32-byte salt of the cooperative at chain address `address`."""
    secret = settings.pseudonym_secret.get_secret_value().encode()
    message = (SALT_LABEL + address.lower()).encode()
    return hmac.new(secret, message, hashlib.sha256).digest()


def farmer_pseudonym(settings: ApiSettings, coop: Organisation, national_id: str) -> bytes:
    """The farmer's id on chain."""
    return farmer_id(coop_salt(settings, coop), national_id)


def plot_pseudonym(settings: ApiSettings, coop: Organisation, land_reference: str) -> bytes:
    """The plot's id on chain."""
    return plot_id(coop_salt(settings, coop), land_reference)


def location_digest(settings: ApiSettings, coop: Organisation, location: str | None) -> bytes:
    """Keyed hash of a location description (zero when none is given)."""
    if not location or not location.strip():
        return b"\x00" * 32
    return location_hash(coop_salt(settings, coop), location)
