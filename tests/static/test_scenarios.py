"""Molecule scenarios: every one is run, ordered, documented; the full-stack ones keep the inventories' shape."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.conftest import ROOT
from tests.integration.jobs import JOB_ORDER
from tests.integration.test_molecule import SCENARIOS

MOLECULE = ROOT / "molecule"
SCENARIO_DIRS = sorted(p.name for p in MOLECULE.iterdir() if (p / "molecule.yml").is_file())


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def test_every_scenario_runs_and_has_a_place_in_the_job_order() -> None:
    assert sorted(SCENARIOS) == SCENARIO_DIRS
    assert [name for name in JOB_ORDER if name != "readme-deploy"] == [name for name in JOB_ORDER if name in SCENARIOS]
    assert set(SCENARIOS) <= set(JOB_ORDER)


def test_every_scenario_is_documented() -> None:
    docs = (ROOT / "docs" / "testing.md").read_text()
    for name in SCENARIOS:
        assert f"`{name}`" in docs, f"docs/testing.md does not describe the {name} scenario"


def test_scenarios_use_their_own_docker_network() -> None:
    networks = {}
    for name in SCENARIO_DIRS:
        for platform in load(MOLECULE / name / "molecule.yml")["platforms"]:
            for net in platform.get("networks", []):
                networks.setdefault(net["name"], set()).add(name)
    assert all(len(users) == 1 for users in networks.values()), networks


def test_default_has_every_group_on_one_host() -> None:
    single = load(ROOT / "inventories" / "single-node" / "hosts.yml")["all"]["children"]
    platforms = load(MOLECULE / "default" / "molecule.yml")["platforms"]
    assert len(platforms) == 1
    assert set(platforms[0]["groups"]) == set(single) | {"oncall", "beyla"}


def test_cluster_has_the_shape_and_group_vars_of_inventories_cluster() -> None:
    inventory = load(ROOT / "inventories" / "cluster" / "hosts.yml")["all"]
    config = load(MOLECULE / "cluster" / "molecule.yml")
    shape = {}
    for group, body in inventory["children"].items():
        for host in body["hosts"]:
            shape.setdefault(host, set()).add(group)
    assert {p["name"]: set(p["groups"]) for p in config["platforms"]} == shape
    links = config["provisioner"]["inventory"]["links"]
    assert (MOLECULE / "cluster" / links["group_vars"]).resolve() == (ROOT / "inventories" / "cluster" / "group_vars")
    assert "side_effect" in config["scenario"]["test_sequence"]
