"""Deployment registry: idempotent, per chain id, redeploys only changed code."""

import json

from chain.deploy import DeploymentRegistry

ARGS = ("Digital Yuan (test)", "eCNY")


def test_second_deploy_is_a_noop(any_chain):
    admin = any_chain.accounts[0].address
    first, created = any_chain.deploy("PaymentToken", (*ARGS, admin))
    assert created
    again, created_again = any_chain.deploy("PaymentToken", (*ARGS, admin))
    assert not created_again
    assert again == first
    doc = json.loads(any_chain.registry.path.read_text())
    assert any_chain.registry.path.name == f"{any_chain.w3.eth.chain_id}.json"
    assert doc["contracts"]["PaymentToken"]["address"] == first.address


def test_changed_init_code_redeploys(embedded):
    admin = embedded.accounts[0].address
    first, _ = embedded.deploy("PaymentToken", (*ARGS, admin))
    changed, created = embedded.deploy("PaymentToken", ("Other", "OTH", admin))
    assert created and changed.address != first.address
    assert embedded.registry.address("PaymentToken") == changed.address


def test_registry_of_another_genesis_is_ignored(embedded, tmp_path):
    admin = embedded.accounts[0].address
    embedded.deploy("PaymentToken", (*ARGS, admin))
    path = embedded.registry.path
    doc = json.loads(path.read_text())
    doc["genesis"] = "0x" + "00" * 32
    path.write_text(json.dumps(doc))
    fresh = DeploymentRegistry(embedded.settings.data_dir, embedded.w3)
    assert fresh.get("PaymentToken") is None


def test_several_names_for_one_contract(embedded):
    admin = embedded.accounts[0].address
    a, _ = embedded.deploy("PaymentToken", (*ARGS, admin), name="TokenA")
    b, _ = embedded.deploy("PaymentToken", (*ARGS, admin), name="TokenB")
    assert a.address != b.address
    assert embedded.contract("TokenB").address == b.address
