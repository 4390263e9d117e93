"""Handles on the deployed TeaTrace and ConsentRegistry, role hashes, their deployment, and
the one reader of a farmer's and a plot's record on chain (`farmer_record`, `wallet_epoch`,
`plot_record`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple
from weakref import WeakKeyDictionary

from eth_utils import keccak, to_checksum_address
from web3.contract import Contract

from chain.client import ChainClient
from chain.deploy import Deployment
from chain.errors import DeploymentError
from chain.views import read_many, read_one, view
from traceability.errors import NotDeployedError, register_roles

TEA_TRACE = "TeaTrace"
CONSENT_REGISTRY = "ConsentRegistry"
DEFAULT_MAX_YIELD_BPS = 3000  # fresh leaf to made tea is about 4-5:1; 30% leaves headroom

DEFAULT_ADMIN_ROLE = b"\x00" * 32
COOPERATIVE_ROLE = keccak(text="COOPERATIVE_ROLE")
PROCESSOR_ROLE = keccak(text="PROCESSOR_ROLE")
DISTRIBUTOR_ROLE = keccak(text="DISTRIBUTOR_ROLE")
INSPECTOR_ROLE = keccak(text="INSPECTOR_ROLE")
ROLES = {
    "DEFAULT_ADMIN_ROLE": DEFAULT_ADMIN_ROLE,
    "COOPERATIVE_ROLE": COOPERATIVE_ROLE,
    "PROCESSOR_ROLE": PROCESSOR_ROLE,
    "DISTRIBUTOR_ROLE": DISTRIBUTOR_ROLE,
    "INSPECTOR_ROLE": INSPECTOR_ROLE,
}
register_roles(ROLES)

# Development accounts (dev mnemonic): 0 is the admin, then one organisation per role.
DEV_ROLE_ACCOUNTS = {
    COOPERATIVE_ROLE: 1,
    PROCESSOR_ROLE: 2,
    DISTRIBUTOR_ROLE: 3,
    INSPECTOR_ROLE: 4,
}


_CONTRACTS: WeakKeyDictionary[ChainClient, dict[str, Contract]] = WeakKeyDictionary()


def _deployed(client: ChainClient, name: str) -> Deployment:
    """The live deployment of `name`, or NotDeployedError saying what to run."""
    try:
        entry = client.registry.get(name)
    except DeploymentError as exc:
        raise NotDeployedError(str(exc)) from None
    if entry is None:
        raise NotDeployedError(
            f"{name} is not deployed on chain {client.registry.chain_id}: run `tealedger deploy`"
        )
    return entry


def deployed(client: ChainClient, name: str) -> Contract:
    """The live deployment of `name` as a contract, or NotDeployedError saying what to run.

    Checked against the chain (its code at the address) once per client and address: the
    service asks for these contracts on every request, and each check is a node round trip
    plus a new contract object.
    """
    cache = _CONTRACTS.setdefault(client, {})
    known, recorded = cache.get(name), client.registry.recorded(name)
    if known is not None and recorded is not None and known.address == recorded.address:
        return known
    found = _deployed(client, name)
    cache[name] = client.contract(found.contract, found.address)
    return cache[name]


def tea_trace(client: ChainClient) -> Contract:
    """The deployed TeaTrace contract."""
    return deployed(client, TEA_TRACE)


def consent_registry(client: ChainClient) -> Contract:
    """The deployed ConsentRegistry contract."""
    return deployed(client, CONSENT_REGISTRY)


class FarmerRecord(NamedTuple):
    """A farmer as TeaTrace keeps it: its cooperative, its wallet and whether it is active."""

    cooperative: str | None
    wallet: str | None
    active: bool

    @property
    def registered(self) -> bool:
        """Whether TeaTrace knows the farmer at all."""
        return self.cooperative is not None


def _address_or_none(value: str) -> str | None:
    """A checksum address, or None for the zero address (TeaTrace's "none")."""
    return None if int(value, 16) == 0 else to_checksum_address(value)


def farmer_record(
    client: ChainClient, farmer: bytes, contract: Contract | None = None
) -> FarmerRecord:
    """`TeaTrace.farmer(id)` decoded: cooperative and wallet None when unset."""
    return farmer_records(client, [farmer], contract)[0]


def farmer_records(
    client: ChainClient, farmers: Sequence[bytes], contract: Contract | None = None
) -> list[FarmerRecord]:
    """`TeaTrace.farmer(id)` of many farmers, read in JSON-RPC batches (chain.views: a web3
    call costs milliseconds of Python, and the service reads records on most requests)."""
    tea = contract if contract is not None else tea_trace(client)
    read = view(tea.abi, "farmer")
    found = read_many(client.w3, [(tea.address, read, (f,)) for f in farmers])
    return [
        FarmerRecord(_address_or_none(c), _address_or_none(w), bool(a)) for ((c, w, a),) in found
    ]


def wallet_epoch(client: ChainClient, farmer: bytes, contract: Contract | None = None) -> int:
    """`TeaTrace.walletEpoch(id)`: how many times the farmer's wallet was changed."""
    tea = contract if contract is not None else tea_trace(client)
    return int(read_one(client.w3, tea.address, tea.abi, "walletEpoch", farmer))


class PlotRecord(NamedTuple):
    """A plot as TeaTrace keeps it (farmer and cooperative None for an unknown plot)."""

    farmer: bytes | None
    cooperative: str | None
    area_centi_mu: int
    variety: int


def plot_record(client: ChainClient, plot: bytes, contract: Contract | None = None) -> PlotRecord:
    """`TeaTrace.plot(id)` decoded."""
    return plot_records(client, [plot], contract)[0]


def plot_records(
    client: ChainClient, plots: Sequence[bytes], contract: Contract | None = None
) -> list[PlotRecord]:
    """`TeaTrace.plot(id)` of many plots, read in JSON-RPC batches (as farmer_records)."""
    tea = contract if contract is not None else tea_trace(client)
    read = view(tea.abi, "plot")
    found = read_many(client.w3, [(tea.address, read, (p,)) for p in plots])
    return [_plot_record(*values) for (values,) in found]


def _plot_record(farmer: bytes, cooperative: str, area: int, variety: int) -> PlotRecord:
    """A decoded `plot` tuple, None for unset ids and addresses."""
    owner = bytes(farmer)
    return PlotRecord(
        owner if any(owner) else None, _address_or_none(cooperative), int(area), int(variety)
    )


def supplier_flags(
    client: ChainClient, pairs: Sequence[tuple[str, str]], contract: Contract | None = None
) -> list[bool]:
    """`TeaTrace.isSupplier(consignee, cooperative)` of many pairs, in JSON-RPC batches."""
    tea = contract if contract is not None else tea_trace(client)
    read = view(tea.abi, "isSupplier")
    found = read_many(client.w3, [(tea.address, read, pair) for pair in pairs])
    return [bool(accepted) for (accepted,) in found]


def deployment_block(client: ChainClient, name: str = TEA_TRACE) -> int:
    """Block in which `name` was deployed: where event queries start."""
    return _deployed(client, name).block_number


def deploy_traceability(
    client: ChainClient, max_yield_bps: int = DEFAULT_MAX_YIELD_BPS
) -> list[tuple[Deployment, bool]]:
    """Deploy TeaTrace and ConsentRegistry unless live, then give dev accounts their roles."""
    admin = client.accounts[0].address
    trace = client.deploy(TEA_TRACE, (admin, max_yield_bps))
    consent = client.deploy(CONSENT_REGISTRY, (trace[0].address,))
    grant_dev_roles(client, client.contract(TEA_TRACE, trace[0].address))
    return [trace, consent]


def grant_dev_roles(client: ChainClient, contract: Contract) -> int:
    """Grant each role to its development account (mnemonic only); returns grants sent."""
    if client.settings.keystore is not None or len(client.accounts) <= max(
        DEV_ROLE_ACCOUNTS.values()
    ):
        return 0
    admin = client.sender(0)
    calls = [
        contract.functions.grantRole(role, client.accounts[index].address)
        for role, index in DEV_ROLE_ACCOUNTS.items()
        if not contract.functions.hasRole(role, client.accounts[index].address).call()
    ]
    if calls:
        admin.wait(admin.send_many(calls))
    return len(calls)
