"""cluster.yaml validates against Ray's own cluster-config schema and keeps the platform's promises
(offline: nothing is launched)."""

from __future__ import annotations

import copy
import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CLUSTER_YAML = ROOT / "cluster.yaml"
ARCH_BY_INSTANCE = {"p5.48xlarge": "90", "p5e.48xlarge": "90", "p4d.24xlarge": "80", "p4de.24xlarge": "80",
                    "g6e.48xlarge": "89", "g5.48xlarge": "86"}


@pytest.fixture(scope="module")
def cfg() -> dict:
    return yaml.safe_load(CLUSTER_YAML.read_text())


def _node_commands(cfg: dict, name: str) -> list[str]:
    node = cfg["available_node_types"][name]
    if name == cfg["head_node_type"]:
        return cfg["setup_commands"] + cfg.get("head_setup_commands", [])
    return node.get("worker_setup_commands", cfg["setup_commands"] + cfg.get("worker_setup_commands", []))


def test_validates_against_ray_schema(cfg):
    import jsonschema
    import ray.autoscaler

    schema = json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())
    jsonschema.validate(cfg, schema)  # the file as written


def test_ray_prepare_and_validate_config(cfg):
    """What `ray up` does before talking to the cloud: merge the provider defaults, then validate."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    prepared = prepare_config(copy.deepcopy(cfg))
    validate_config(prepared)
    types = prepared["available_node_types"]
    assert types[prepared["head_node_type"]]["max_workers"] == 0
    assert sum(t.get("min_workers", 0) for t in types.values()) <= prepared["max_workers"]
    for name, t in types.items():
        assert 0 <= t["min_workers"] <= t["max_workers"] <= prepared["max_workers"], name


def test_node_roles_and_placement_resources(cfg):
    from videomamba.cluster.placement import DECODE_RESOURCE, TRAIN_RESOURCE

    types = cfg["available_node_types"]
    head = types[cfg["head_node_type"]]
    assert head["resources"].get("CPU") == 0, "the head takes no decode/training work"
    decode = [n for n, t in types.items() if t["resources"].get(DECODE_RESOURCE)]
    train = [n for n, t in types.items() if t["resources"].get(TRAIN_RESOURCE)]
    assert decode and train and not set(decode) & set(train)
    for n in decode:
        itype = types[n]["node_config"]["InstanceType"]
        assert itype not in ARCH_BY_INSTANCE and not itype.startswith(("p", "g")), f"{n}: decode nodes are CPU-only"
    for n in train:
        assert types[n]["node_config"]["InstanceType"] in ARCH_BY_INSTANCE, f"{n}: training nodes have GPUs"
    assert cfg["max_workers"] >= max(types[n]["max_workers"] for n in decode + train)


def test_labels_follow_ray_syntax(cfg):
    from ray._private.label_utils import validate_node_label_syntax, validate_node_labels

    for name, t in cfg["available_node_types"].items():
        labels = t.get("labels", {})
        validate_node_labels(labels)
        validate_node_label_syntax(labels)
        assert labels.get("videomamba.io/role"), name


def test_gpu_nodes_build_cuda_extensions_for_their_arch(cfg):
    assert (ROOT / "scripts" / "build_cuda_extensions.sh").exists()
    for name, t in cfg["available_node_types"].items():
        cmds = " ".join(_node_commands(cfg, name))
        assert re.search(r"pip install .*-e \"\$HOME/videomamba", cmds), f"{name}: installs the project"
        itype = t["node_config"]["InstanceType"]
        if itype in ARCH_BY_INSTANCE:
            assert "scripts/build_cuda_extensions.sh" in cmds, name
            assert f"CUDA_ARCH={ARCH_BY_INSTANCE[itype]}" in cmds, f"{name}: builds for its GPU arch"
            assert '[cuda]"' in cmds, f"{name}: installs the cuda extra"
            image = t.get("docker", {}).get("worker_image", "")
            assert re.search(r"-(gpu|cu\d+)$", image), f"{name}: a CUDA devel image ({image})"
        else:
            assert "build_cuda_extensions" not in cmds and "[cuda]" not in cmds, name


def test_commands_are_valid_shell(cfg):
    lists = [cfg.get(k, []) for k in ("setup_commands", "head_setup_commands", "worker_setup_commands",
                                      "head_start_ray_commands", "worker_start_ray_commands", "initialization_commands")]
    lists += [t.get("worker_setup_commands", []) for t in cfg["available_node_types"].values()]
    for cmd in (c for lst in lists for c in lst):
        r = subprocess.run(["bash", "-n", "-c", cmd], capture_output=True, text=True)
        assert r.returncode == 0, f"{cmd!r}: {r.stderr}"


def test_dashboard_on_loopback_and_project_synced(cfg):
    head_start = " ".join(cfg["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in head_start
    assert "0.0.0.0" not in CLUSTER_YAML.read_text()
    assert "--autoscaling-config=~/ray_bootstrap_config.yaml" in head_start
    assert any(Path(local) == Path(".") for local in cfg["file_mounts"].values())
    assert ".gitignore" in cfg.get("rsync_filter", [])


def test_no_credentials_in_file():
    text = CLUSTER_YAML.read_text()
    forbidden = [
        r"AKIA[0-9A-Z]{16}",  # AWS access key id
        r"(?i)aws_(secret_)?access_key",
        r"(?i)aws_session_token",
        r"(?i)ssh_private_key:\s*\S",  # only as a comment
        r"(?i)password\s*[:=]",
        r"-----BEGIN",
    ]
    for line in text.splitlines():
        code = line.split("#", 1)[0]
        for pat in forbidden:
            assert not re.search(pat, code), f"credential-like content: {line.strip()!r}"
