"""The `fabric` and `collective` commands: text and JSON output, scenario paths, and one error line with exit 2 on
bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
MEMPHIS = REPO / "scenarios" / "memphis.yaml"
SMALL_SCENARIO: dict[str, Any] = {
    "name": "fabric-test",
    "model": "llama3-8b",
    "training": {"tokens": 1.0e12, "global_batch": 512, "seq_len": 8192},
}
COLLECTIVE = ("collective", "--cluster", "colossus", "--op", "all-reduce", "--bytes", "1GiB")


def strict_json(text: str) -> Any:
    """Parse standard JSON only: Infinity and NaN are refused."""
    def reject(token: str) -> None:
        raise ValueError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=reject)


def write_scenario(path: Path, cluster: Any) -> Path:
    path.write_text(yaml.safe_dump({**SMALL_SCENARIO, "cluster": cluster}, sort_keys=False), encoding="utf-8")
    return path


def fabric_json(cli, target: str) -> dict[str, Any]:
    result = cli("fabric", target, "--json")
    assert result.code == 0, result.err
    assert "Traceback" not in result.err
    return strict_json(result.out)


# --- fabric ----------------------------------------------------------------------------------------------------------


def test_fabric_colossus_text(cli) -> None:
    """`supercluster fabric colossus` prints the tier reasoning (2 tiers reach 8,192, 3 reach 524,288) and totals."""
    result = cli("fabric", "colossus")
    assert result.code == 0, result.err
    assert result.err.strip() == ""
    for fragment in ("colossus", "100,000", "8,192", "524,288", "radix 128", "switches", "transceivers"):
        assert fragment in result.out, fragment


def test_fabric_colossus_json(cli) -> None:
    """`fabric colossus --json`: 3 tiers, 3,800-4,000 switches (SemiAnalysis: ~3,900 for 100k GPUs), power per part
    summing to the total."""
    data = fabric_json(cli, "colossus")
    assert data["gpus"] == 100_000
    assert data["radix"] == 128
    assert len(data["tiers"]) == 3 and data["min_tiers"] == 3
    assert [t["tier"] for t in data["tiers"]] == ["leaf", "spine", "core"]
    assert 3_800 <= data["switches"] <= 4_000
    assert data["switches"] == sum(t["switches"] for t in data["tiers"])
    assert data["reach_by_tiers"]["2"] == 8_192
    assert data["transceivers"] == 2 * (data["nic_links"] + data["switch_links"])
    assert {"switches", "nics", "optics", "total"} <= set(data["power_w"])
    parts = sum(v for k, v in data["power_w"].items() if k != "total")
    assert data["power_w"]["total"] == pytest.approx(parts)
    assert all(v > 0 for v in data["power_w"].values())
    assert data["bisection_bytes_per_s"] == pytest.approx(100_000 * 50e9 / 2)


def test_fabric_of_a_scenario_file(cli) -> None:
    """`fabric SCENARIO` reads the scenario's cluster: memphis.yaml is Colossus."""
    from_scenario = fabric_json(cli, str(MEMPHIS))
    from_catalog = fabric_json(cli, "colossus")
    for key in ("gpus", "radix", "tiers", "switches", "transceivers", "power_w"):
        assert from_scenario[key] == from_catalog[key], key


def test_fabric_of_a_tmp_scenario(cli, tmp_path: Path) -> None:
    """`fabric SCENARIO` on a written scenario with a 10,752-GPU Quantum-2 cluster: radix 64, 3 tiers."""
    scenario = write_scenario(tmp_path / "eos.yaml", {"base": "eos"})
    data = fabric_json(cli, str(scenario))
    assert data["gpus"] == 10_752
    assert data["radix"] == 64
    assert len(data["tiers"]) == 3
    assert data["reach_by_tiers"]["2"] == 2_048


def test_fabric_of_a_scenario_that_changes_the_switch(cli, tmp_path: Path) -> None:
    """A scenario moving Colossus to Quantum-2 (radix 64) gets 4 tiers."""
    scenario = write_scenario(tmp_path / "qm.yaml", {"base": "colossus", "fabric": {"base": "quantum-2-ndr"}})
    data = fabric_json(cli, str(scenario))
    assert data["radix"] == 64
    assert len(data["tiers"]) == 4


def test_fabric_unknown_cluster(cli) -> None:
    """An unknown cluster name: one error line naming it, exit 2."""
    cli("fabric", "colosus").one_error_line("colosus", "colossus")


def test_fabric_too_few_fixed_tiers(cli, tmp_path: Path) -> None:
    """A scenario fixing 2 tiers for 100,000 GPUs: one error line at cluster.fabric.tiers, exit 2."""
    scenario = write_scenario(tmp_path / "flat.yaml", {"base": "colossus", "fabric": {"tiers": 2}})
    cli("fabric", str(scenario)).one_error_line("cluster.fabric.tiers", "100,000")


# --- collective ------------------------------------------------------------------------------------------------------


def test_collective_json(cli) -> None:
    """`collective ... --gpus 16 --json` reports time, algbw, busbw (= algbw x 2(n-1)/n) and the algorithm."""
    result = cli(*COLLECTIVE, "--gpus", "16", "--json")
    assert result.code == 0, result.err
    data = strict_json(result.out)
    assert {"time_s", "algbw_bytes_per_s", "busbw_bytes_per_s", "algorithm"} <= set(data)
    assert data["op"] == "all_reduce" and data["gpus"] == 16
    assert data["message_bytes"] == 2**30
    assert data["time_s"] > 0
    assert data["algbw_bytes_per_s"] == pytest.approx(2**30 / data["time_s"])
    assert data["busbw_bytes_per_s"] == pytest.approx(data["algbw_bytes_per_s"] * 2 * 15 / 16)
    assert data["algorithm"] in data["alternatives"]
    assert data["time_s"] == min(data["alternatives"].values())
    assert (data["per_domain"], data["domains"]) == (8, 2)


def test_collective_text(cli) -> None:
    """The text form names the operation, the algorithm and the bandwidths."""
    result = cli(*COLLECTIVE, "--gpus", "16")
    assert result.code == 0, result.err
    for fragment in ("all-reduce", "algbw", "busbw", "alternatives"):
        assert fragment in result.out, fragment


@pytest.mark.parametrize("op", ["all-reduce", "reduce-scatter", "all-gather", "broadcast", "all-to-all",
                                "alltoall", "send-recv", "ALL-GATHER", "all_reduce"])
def test_collective_every_op(cli, op: str) -> None:
    """Every operation, in nccl-tests spelling, runs on a strided cross-node group."""
    result = cli("collective", "--cluster", "eos", "--op", op, "--bytes", "256MiB", "--gpus", "64", "--stride",
                 "8", "--json")
    assert result.code == 0, result.err
    data = strict_json(result.out)
    assert data["time_s"] > 0 and data["stride"] == 8


@pytest.mark.parametrize(("size", "said", "unit"), [
    ("8", "8 B", "us"), ("1MiB", "1 MiB (1,048,576 bytes)", "us"), ("1GiB", "1 GiB (1,073,741,824 bytes)", "ms"),
    ("512GiB", "512 GiB (549,755,813,888 bytes)", "s"),
])
def test_collective_text_says_sizes_and_times_in_units_that_read(cli, size: str, said: str, unit: str) -> None:
    """The text form gives the size in binary units (exact bytes beside) and each time in us, ms or s as it grows,
    to three significant figures: never '4,174,975.1 us'."""
    result = cli(*COLLECTIVE[:-1], size, "--gpus", "16")
    assert result.code == 0, result.err
    first, timing, others = result.out.splitlines()[:3]
    assert f"all-reduce of {said} on 16 GPUs" in first and "2 domains" in first
    times = re.findall(r"([\d.,]+) (us|ms|s)\b", timing + " " + others)
    assert len(times) >= 2 and {u for _, u in times} == {unit}, (timing, others)
    assert all(len(number.replace(",", "").replace(".", "").lstrip("0")) <= 3 for number, _ in times), times


def test_collective_json_keeps_exact_si(cli) -> None:
    """--json keeps SI numbers (seconds, bytes), whatever the text form prints."""
    data = strict_json(cli(*COLLECTIVE[:-1], "8", "--gpus", "16", "--json").out)
    assert data["message_bytes"] == 8 and 0 < data["time_s"] < 1e-3


def test_collective_forced_algorithm(cli) -> None:
    """--algo ring forces the ring even where another algorithm is faster."""
    data = strict_json(cli(*COLLECTIVE, "--gpus", "8", "--algo", "ring", "--json").out)
    assert data["algorithm"] == "ring"
    assert data["time_s"] == data["alternatives"]["ring"]


def test_collective_on_a_scenario_file(cli) -> None:
    """--cluster accepts a scenario path."""
    result = cli("collective", "--cluster", str(MEMPHIS), "--op", "all-gather", "--bytes", "1GiB", "--gpus", "16",
                 "--json")
    assert result.code == 0, result.err
    assert strict_json(result.out)["cluster"] == "colossus"


@pytest.mark.parametrize(("args", "fragments"), [
    (("--op", "all-scatter", "--bytes", "1GiB", "--gpus", "16"), ("--op", "all-scatter")),
    (("--op", "all-reduce", "--bytes", "1GiB", "--gpus", "16", "--algo", "fastest"), ("--algo", "fastest")),
    (("--op", "all-reduce", "--bytes", "1GiB", "--gpus", "16", "--algo", "nvls"), ("nvls", "not available")),
    (("--op", "all-reduce", "--bytes", "1GiB", "--gpus", "16", "--algo", "sharp"), ("sharp", "not available")),
    (("--op", "all-gather", "--bytes", "1GiB", "--gpus", "16", "--algo", "tree"), ("tree", "not available")),
    (("--op", "all-reduce", "--bytes", "lots", "--gpus", "16"), ("--bytes", "lots")),
    (("--op", "all-reduce", "--bytes", "1.5XB", "--gpus", "16"), ("--bytes",)),
    (("--op", "all-reduce", "--bytes", "0", "--gpus", "16"), ("--bytes", "positive")),
    (("--op", "all-reduce", "--bytes", "-1GiB", "--gpus", "16"), ("--bytes",)),
    (("--op", "all-reduce", "--bytes", "0.5", "--gpus", "16"), ("--bytes", "whole number", "0.5")),
    (("--op", "all-reduce", "--bytes", "1.5B", "--gpus", "16"), ("--bytes", "whole number")),
    (("--op", "all-reduce", "--bytes", "1e30", "--gpus", "16"), ("--bytes", "at most 1 TiB", "1e30")),
    (("--op", "all-reduce", "--bytes", "2TiB", "--gpus", "16"), ("--bytes", "at most 1 TiB")),
    (("--op", "all-reduce", "--bytes", "1GiB", "--gpus", "200000"), ("gpus", "200000", "100,000")),
    (("--op", "all-reduce", "--bytes", "1GiB", "--gpus", "0"), ("gpus",)),
    (("--op", "all-reduce", "--bytes", "1GiB", "--gpus", "-8"), ("gpus",)),
    (("--op", "all-reduce", "--bytes", "1GiB", "--gpus", "64", "--stride", "4096"), ("gpus", "4096")),
])
def test_collective_bad_input(cli, args: tuple[str, ...], fragments: tuple[str, ...]) -> None:
    """Bad input to `collective` gives one located error line and exit 2."""
    cli("collective", "--cluster", "colossus", *args).one_error_line(*fragments)


def test_collective_unknown_cluster(cli) -> None:
    """An unknown --cluster: one error line suggesting the nearest name, exit 2."""
    cli("collective", "--cluster", "colosus", "--op", "all-reduce", "--bytes", "1GiB",
        "--gpus", "16").one_error_line("colosus", "colossus")


@pytest.mark.parametrize("stride", ["0", "-8"])
def test_collective_stride_must_be_positive(cli, stride: str) -> None:
    """--stride 0 or negative: one error line at the stride, exit 2 (not a report for stride 1)."""
    cli(*COLLECTIVE, "--gpus", "8", "--stride", stride).one_error_line("stride")


def test_collective_json_of_one_gpu_is_strict_json(cli) -> None:
    """`collective --gpus 1 --json` prints standard JSON (no Infinity/NaN): a one-GPU collective is refused with
    one error line, or reported with finite numbers."""
    result = cli(*COLLECTIVE, "--gpus", "1", "--json")
    if result.code == 2:
        result.one_error_line("gpus")
        return
    assert result.code == 0, result.err
    data = strict_json(result.out)
    assert data["time_s"] == 0.0
