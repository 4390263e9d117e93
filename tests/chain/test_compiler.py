"""Compiler: pinned offline solc through py-solc-x, cache, diagnostics."""

import json
import os
from pathlib import Path

import pytest

from chain import compiler
from chain.compiler import SOLC_VERSION, compile_contracts
from chain.config import PROJECT_ROOT
from chain.errors import CompileError


def test_pinned_version_matches_package_json():
    package = json.loads((PROJECT_ROOT / "package.json").read_text())
    assert package["dependencies"]["solc"] == SOLC_VERSION


def test_project_compiles_with_custom_errors(tmp_path):
    arts = compile_contracts(PROJECT_ROOT, tmp_path)
    token = arts["PaymentToken"]
    assert token.bytecode and token.deployed_bytecode
    names = {e["name"] for e in token.errors}
    assert {"PaymentTokenZeroAmount", "ERC20InsufficientBalance"} <= names
    assert os.environ["SOLCX_BINARY_PATH"]


def test_cache_hit_skips_solc(tmp_path, monkeypatch):
    compiler._MEMO.clear()
    first = compile_contracts(PROJECT_ROOT, tmp_path)
    assert list(tmp_path.glob("solc-*.json"))
    compiler._MEMO.clear()

    def boom(*_args):
        raise AssertionError("solc must not run on a cache hit")

    monkeypatch.setattr(compiler, "_run_solc", boom)
    second = compile_contracts(PROJECT_ROOT, tmp_path)
    assert second["PaymentToken"].bytecode == first["PaymentToken"].bytecode


def _scratch_project(tmp_path: Path, source: str) -> Path:
    """A project with one contract, sharing the real node_modules."""
    (tmp_path / "contracts").mkdir()
    (tmp_path / "contracts" / "Broken.sol").write_text(source)
    (tmp_path / "node_modules").symlink_to(PROJECT_ROOT / "node_modules")
    return tmp_path


def test_compile_error_names_file_and_line(tmp_path):
    source = "// SPDX-License-Identifier: MIT\npragma solidity ^0.8.24;\n"
    source += "contract B { uint x = ; }\n"
    root = _scratch_project(tmp_path, source)
    with pytest.raises(CompileError) as exc:
        compile_contracts(root, None)
    assert "contracts/Broken.sol:3" in str(exc.value)
    assert "Expected" in str(exc.value)


def test_unknown_contract_lists_known_ones(tmp_path):
    with pytest.raises(CompileError, match="PaymentToken"):
        compile_contracts(PROJECT_ROOT, tmp_path)["NoSuchThing"]


def test_missing_sources_are_reported(tmp_path):
    (tmp_path / "contracts").mkdir()
    with pytest.raises(CompileError, match="no Solidity sources"):
        compile_contracts(tmp_path, None)
