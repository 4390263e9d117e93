"""Compile contracts/ with the pinned solc through py-solc-x, offline, with an artifact cache."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import solcx
from solcx.exceptions import SolcError

from chain.errors import CompileError

SOLC_VERSION = "0.8.37"
EVM_VERSION = "shanghai"
OPTIMIZER_RUNS = 200
REMAPPINGS = ("@openzeppelin/=node_modules/@openzeppelin/",)
_SHIM = Path(__file__).with_name("solc_shim.js")
_MEMO: dict[str, Artifacts] = {}  # per process: tests build many clients over one source tree


@dataclass(frozen=True)
class Artifact:
    """One compiled contract: its ABI and creation/runtime bytecode."""

    name: str
    source: str
    abi: list[dict[str, Any]]
    bytecode: bytes
    deployed_bytecode: bytes = field(repr=False)

    @property
    def errors(self) -> list[dict[str, Any]]:
        """ABI entries of the custom errors this contract can raise."""
        return [e for e in self.abi if e.get("type") == "error"]


@dataclass(frozen=True)
class Artifacts:
    """All contracts of one compilation, by name (project contracts) and by `path:Name`."""

    by_name: dict[str, Artifact]
    digest: str

    def __getitem__(self, name: str) -> Artifact:
        """Return the artifact called `name`, with a helpful error if there is none."""
        try:
            return self.by_name[name]
        except KeyError:
            known = ", ".join(sorted(k for k in self.by_name if ":" not in k))
            raise CompileError(f"no contract named {name!r}; compiled: {known}") from None

    def all(self) -> list[Artifact]:
        """Every artifact once."""
        return list({id(a): a for a in self.by_name.values()}.values())


def ensure_offline_solc(binary_dir: Path) -> Path:
    """Make `<binary_dir>/solc-v<version>` point at the Node shim and tell py-solc-x about it."""
    binary_dir.mkdir(parents=True, exist_ok=True)
    link = binary_dir / f"solc-v{SOLC_VERSION}"
    if not link.exists():
        link.unlink(missing_ok=True)
        link.symlink_to(_SHIM)
    os.environ.setdefault("SOLCX_BINARY_PATH", str(binary_dir))
    return link


def _sources(project_root: Path) -> dict[str, dict[str, str]]:
    """Standard-JSON sources: every .sol under contracts/, keyed by project-relative path."""
    files = sorted((project_root / "contracts").rglob("*.sol"))
    if not files:
        raise CompileError(f"no Solidity sources under {project_root / 'contracts'}")
    return {f.relative_to(project_root).as_posix(): {"content": f.read_text()} for f in files}


def standard_input(project_root: Path) -> dict[str, Any]:
    """The standard-JSON input for the project (the same one brownie's settings describe)."""
    return {
        "language": "Solidity",
        "sources": _sources(project_root),
        "settings": {
            "evmVersion": EVM_VERSION,
            "optimizer": {"enabled": True, "runs": OPTIMIZER_RUNS},
            "remappings": list(REMAPPINGS),
            "outputSelection": {
                "*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}
            },
        },
    }


def _digest(project_root: Path, source_input: dict[str, Any]) -> str:
    """Cache key: sources, settings, compiler and OpenZeppelin versions."""
    oz = project_root / "node_modules/@openzeppelin/contracts/package.json"
    oz_version = json.loads(oz.read_text())["version"] if oz.exists() else "missing"
    blob = json.dumps([SOLC_VERSION, oz_version, source_input], sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()


def _run_solc(project_root: Path, source_input: dict[str, Any]) -> dict[str, Any]:
    """Run the pinned compiler; turn solc diagnostics into CompileError."""
    if not (project_root / "node_modules/solc").exists():
        raise CompileError("the npm solc compiler is missing: run `make install` (npm ci)")
    try:
        output = solcx.compile_standard(
            source_input,
            solc_version=SOLC_VERSION,
            base_path=str(project_root),
            allow_paths=[str(project_root / "node_modules")],
        )
    except SolcError as exc:
        raise CompileError(_diagnostics(exc.stdout_data) or str(exc)) from None
    problems = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    if problems:
        raise CompileError("\n".join(e.get("formattedMessage", e["message"]) for e in problems))
    return output


def _diagnostics(stdout: str | None) -> str:
    """Extract solc's formatted error messages (file:line:col) from its JSON output."""
    try:
        errors = json.loads(stdout or "{}").get("errors", [])
    except json.JSONDecodeError:
        return stdout or ""
    return "\n".join(
        e.get("formattedMessage", e.get("message", "")) for e in errors if e["severity"] == "error"
    )


def _artifacts(output: dict[str, Any], digest: str) -> Artifacts:
    """Index the compiler output by contract name."""
    by_name: dict[str, Artifact] = {}
    for source, contracts in output.get("contracts", {}).items():
        for name, body in contracts.items():
            art = Artifact(
                name=name,
                source=source,
                abi=body["abi"],
                bytecode=bytes.fromhex(body["evm"]["bytecode"]["object"]),
                deployed_bytecode=bytes.fromhex(body["evm"]["deployedBytecode"]["object"]),
            )
            by_name[f"{source}:{name}"] = art
            # Project contracts win the short name over library ones of the same name.
            if source.startswith("contracts/") or name not in by_name:
                by_name[name] = art
    return Artifacts(by_name=by_name, digest=digest)


def compile_contracts(project_root: Path, cache_dir: Path | None = None) -> Artifacts:
    """Compile (or load from cache) every contract of the project."""
    ensure_offline_solc(project_root / ".solc")
    source_input = standard_input(project_root)
    digest = _digest(project_root, source_input)
    if digest in _MEMO:
        return _MEMO[digest]
    cached = cache_dir / f"solc-{digest[:32]}.json" if cache_dir else None
    if cached and cached.exists():
        output = json.loads(cached.read_text())
    else:
        output = {"contracts": _run_solc(project_root, source_input).get("contracts", {})}
        if cached:
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(output))
            tmp.replace(cached)
    _MEMO[digest] = _artifacts(output, digest)
    return _MEMO[digest]
