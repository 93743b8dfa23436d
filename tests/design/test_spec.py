"""Design files are read strictly: a bad one is one located line (file, field, what was expected), exit 2."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from supercluster.design.spec import load_design

from .conftest import small_design, write


def _space(**changes: Any) -> dict[str, Any]:
    return {**small_design()["space"], **changes}


@pytest.mark.parametrize(("changes", "fragments"), [
    ({"bogus": 1}, ["bogus", "unknown key"]),
    ({"space": _space(accelerators=["H100-SXM5-80GBX"])}, ["space.accelerators.0", "unknown accelerator"]),
    ({"space": _space(num_gpus=[0])}, ["space.num_gpus", "greater than 0"]),
    ({"space": _space(num_gpus={"start": 64, "stop": 8, "step": 8})}, ["space.num_gpus", "below start"]),
    ({"space": _space(fabrics=["spectrum-z"])}, ["space.fabrics.0", "unknown fabric"]),
    ({"space": _space(fabrics=[{"base": "spectrum-x", "tiers": 9}])}, ["space.fabrics.0", "tiers"]),
    ({"space": _space(facilities=["nowhere"])}, ["space.facilities.0", "unknown facility"]),
    ({"space": _space(domains=[3])}, ["space.domains", "must divide"]),
    ({"space": _space(accelerators=[])}, ["space.accelerators", "at least 1"]),
    ({"constraints": {"budget_usd": -1.0}}, ["constraints.budget_usd", "greater than 0"]),
    ({"constraints": {"budget_parts": ["gpu"]}}, ["constraints.budget_parts.0"]),
    ({"scenario": "missing.yaml"}, ["scenario", "no scenario file"]),
    ({"workloads": []}, ["workloads", "at least 1"]),
    ({"workloads": [{"tokens": 1.0e10}, {"model": "llama9-1b"}]}, [": workloads.1.model: ", "unknown model"]),
    ({"workloads": [{"weight": 0}]}, ["workloads.0.weight", "greater than 0"]),
    ({"workloads": [{"wieght": 2}]}, ["workloads.0.wieght", "unknown key"]),
    ({"workloads": [{"training": {"global_batch": 0}}]}, ["workloads.0.training.global_batch", "greater than 0"]),
    ({"workloads": [{"tokens": 1.0e10, "training": {"tokens": 2.0e10}}]}, ["workloads.0.tokens: given twice"]),
    ({"workloads": [{"scenario": "missing.yaml"}]}, ["workloads.0.scenario", "no scenario file"]),
    ({"workloads": [{"name": "a"}, {"name": "a", "tokens": 1.0e9}]}, ["workloads.1.name", "also workloads.0's"]),
], ids=["unknown-key", "unknown-accelerator", "zero-gpus", "range-backwards", "unknown-fabric", "too-many-tiers",
        "unknown-facility", "domain", "no-accelerators", "negative-budget", "budget-part", "no-scenario", "no-workloads", "workload-model", "workload-weight",
        "workload-key", "workload-training", "workload-tokens-twice", "workload-scenario", "workload-names"])
def test_bad_design_file_is_one_located_line(cli, tmp_path: Path, changes: dict[str, Any],
                                             fragments: list[str]) -> None:
    """Each mistake is refused before any work, located in the design file."""
    path = write(tmp_path, small_design(**changes))
    cli("design", str(path), "--out", str(tmp_path / "out.duckdb")).one_error_line(str(path), *fragments)
    assert not (tmp_path / "out.duckdb").exists()


def test_a_range_of_counts_and_the_shipped_seeds_load() -> None:
    """num_gpus as {start, stop, step}; the seed designs shipped with the package load."""
    root = Path(__file__).parents[2] / "designs"
    for name in ("memphis-2024.yaml", "stargate.yaml", "portfolio.yaml"):
        d = load_design(root / name)
        assert d.size > 0 and d.constraints.power_mw is not None
    assert [w.weight for w in load_design(root / "portfolio.yaml").workloads] == [1, 1, 5]
    data = small_design(space=_space(num_gpus={"start": 64, "stop": 256, "step": 64}))
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        assert load_design(write(Path(tmp), data)).counts == [64, 128, 192, 256]
