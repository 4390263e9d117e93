"""The offline solc shim answers what slither's crytic-compile asks, as a native solc would."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

from chain.config import PROJECT_ROOT
from tests._fixtures import needs_node

SHIM = PROJECT_ROOT / "chain" / "solc_shim.js"
REMAP = "@openzeppelin/=node_modules/@openzeppelin/"
TOKEN = "contracts/PaymentToken.sol"
ERC20 = "node_modules/@openzeppelin/contracts/token/ERC20/ERC20.sol"
# crytic-compile 0.4.2's request in --solc-standard-json mode (build_standard_json_default).
CRYTIC_SELECTION = {
    "*": {
        "*": ["abi", "metadata", "devdoc", "userdoc", "evm.bytecode", "evm.deployedBytecode"],
        "": ["ast"],
    }
}
# ... and its --combined-json fields for solc >= 0.8.10 (crytic_compile.platform.solc).
CRYTIC_COMBINED = "abi,ast,bin,bin-runtime,srcmap,srcmap-runtime,userdoc,devdoc,hashes"

pytestmark = needs_node()


def shim(*args: str, stdin: str | None = None, cwd: Path = PROJECT_ROOT) -> Any:
    """Run the shim as crytic-compile does: by path, from the project directory."""
    return subprocess.run(
        [str(SHIM), *args], input=stdin, cwd=cwd, capture_output=True, text=True, check=False
    )


def test_version_is_in_native_solc_format():
    out = shim("--version")
    assert out.returncode == 0
    # crytic-compile takes the first x.y.z of stdout.
    assert re.findall(r"\d+\.\d+\.\d+", out.stdout)[0] == "0.8.37"
    assert out.stdout.startswith("solc, the solidity compiler commandline interface")


def test_standard_json_as_crytic_sends_it():
    request = {
        "language": "Solidity",
        "sources": {TOKEN: {"urls": [TOKEN]}},
        "settings": {
            "remappings": [REMAP],
            "optimizer": {"enabled": False},
            "outputSelection": CRYTIC_SELECTION,
        },
    }
    out = shim("--standard-json", "--allow-paths", str(PROJECT_ROOT), stdin=json.dumps(request))
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert not [e for e in result.get("errors", []) if e["severity"] == "error"]
    assert result["sources"][TOKEN]["ast"]["nodeType"] == "SourceUnit"
    assert result["sources"][ERC20]["ast"]["nodeType"] == "SourceUnit"
    token = result["contracts"][TOKEN]["PaymentToken"]
    for part in ("bytecode", "deployedBytecode"):
        assert token["evm"][part]["object"]
        assert ";" in token["evm"][part]["sourceMap"]
    assert token["devdoc"] and token["userdoc"] and json.loads(token["metadata"])


def _combined(*extra: str, files: tuple[str, ...] = (TOKEN,), cwd: Path = PROJECT_ROOT) -> Any:
    """The shim's --combined-json answer, laid out as crytic-compile's command line."""
    args = [REMAP, *files, "--combined-json", CRYTIC_COMBINED, *extra]
    return shim(*args, "--allow-paths", f".,{cwd / 'contracts'}", cwd=cwd)


def test_combined_json_as_crytic_asks_for_one_file():
    out = _combined("--optimize", "--optimize-runs", "200", "--evm-version", "shanghai")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    token = result["contracts"][f"{TOKEN}:PaymentToken"]
    assert set(token) == set(CRYTIC_COMBINED.split(",")) - {"ast"}
    assert token["bin"] and token["bin-runtime"] and ";" in token["srcmap-runtime"]
    assert token["hashes"]["transfer(address,uint256)"] == "a9059cbb"
    assert any(e.get("name") == "PaymentTokenZeroAmount" for e in token["abi"])
    assert result["sources"][TOKEN]["AST"]["nodeType"] == "SourceUnit"
    assert ERC20 in result["sourceList"] and result["version"].startswith("0.8.37")


def test_combined_json_reports_errors_like_solc(tmp_path):
    (tmp_path / "contracts").mkdir()
    (tmp_path / "node_modules").symlink_to(PROJECT_ROOT / "node_modules")
    broken = "// SPDX-License-Identifier: MIT\npragma solidity ^0.8.24;\n"
    broken += "contract B { uint x = ; }\n"
    (tmp_path / "contracts" / "Broken.sol").write_text(broken)
    out = _combined(files=("contracts/Broken.sol",), cwd=tmp_path)
    assert out.returncode == 1 and not out.stdout
    assert "contracts/Broken.sol:3" in out.stderr


def test_unknown_mode_is_refused_with_what_is_supported():
    out = shim("--bin", TOKEN)
    assert out.returncode == 2
    assert "--standard-json" in out.stderr and "--combined-json" in out.stderr
