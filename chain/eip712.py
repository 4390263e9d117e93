"""EIP-712 typed data (eth_signTypedData_v4): the one domain every contract of the project signs
under (name, version, chain id, verifying contract)."""

from __future__ import annotations

from typing import Any

DOMAIN_FIELDS: list[dict[str, str]] = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]


def typed_data(
    domain: tuple[str, str, int, str],
    primary: str,
    fields: list[dict[str, str]],
    message: dict[str, Any],
) -> dict[str, Any]:
    """The full typed data of `message` (type `primary`) under domain (name, version, chainId,
    verifyingContract)."""
    name, version, chain_id, contract = domain
    return {
        "types": {"EIP712Domain": DOMAIN_FIELDS, primary: fields},
        "primaryType": primary,
        "domain": {
            "name": name,
            "version": version,
            "chainId": chain_id,
            "verifyingContract": contract,
        },
        "message": message,
    }
