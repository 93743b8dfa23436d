"""Who runs slower: GPUs to (replica, stage) groups, stragglers, and the replicas symmetric mode simulates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from supercluster.errors import InputError
from supercluster.sim.variability import gpu_slowdown, group_slowdown, parse_straggler, representatives
from supercluster.spec import load_scenario

MEMPHIS = Path(__file__).resolve().parents[2] / "scenarios" / "memphis.yaml"
PAR = {"tp": 2, "cp": 2, "dp": 4, "pp": 2, "order": "tp-cp-ep-dp-pp"}  # 32 GPUs


def test_a_gpu_straggler_slows_its_replica_and_stage_only() -> None:
    """GPU 21 (tp-cp-ep-dp-pp: replica 1, stage 1) at 80% speed slows group (1, 1) by 1/0.8, nothing else."""
    s = load_scenario(MEMPHIS, ["cluster.num_gpus=32", "training.global_batch=32"])
    f = gpu_slowdown(s, sigma=0.0, seed=0, iteration=0, stragglers=(parse_straggler("gpu=21:0.8", s),))
    g = group_slowdown(f, PAR)
    expected = np.ones((4, 2))
    expected[1, 1] = 1.25
    assert np.array_equal(g, expected)


def test_a_node_straggler_slows_every_gpu_of_the_node() -> None:
    """node=1 covers GPUs 8..15 (8 per node): replicas 2 and 3 of stage 0."""
    s = load_scenario(MEMPHIS, ["cluster.num_gpus=32", "training.global_batch=32"])
    f = gpu_slowdown(s, sigma=0.0, seed=0, iteration=0, stragglers=(parse_straggler("node=1:0.5", s),))
    assert np.flatnonzero(f != 1.0).tolist() == list(range(8, 16))
    assert group_slowdown(f, PAR)[:, 0].tolist() == [1.0, 1.0, 2.0, 2.0]


def test_symmetric_mode_simulates_the_replica_slowest_on_the_heaviest_stage() -> None:
    """A 10% slowdown on a stage with three times the work outranks a 20% one on a light stage."""
    groups = np.array([[1.2, 1.0], [1.0, 1.1], [1.0, 1.0]])
    labels, slow = representatives(groups, [1.0, 3.0])
    assert labels == [1, -1] and slow[0] == [1.0, 1.1] and slow[1] == [1.0, 1.0]
    assert representatives(np.ones((3, 2)), [1.0, 3.0]) == ([0], [[1.0, 1.0]])


@pytest.mark.parametrize("text, message", [
    ("gpu=1", "expected gpu=INDEX:SPEED or node=INDEX:SPEED (e.g. gpu=1234:0.8), got 'gpu=1'"),
    ("leaf=1:0.5", "expected gpu=INDEX:SPEED or node=INDEX:SPEED (e.g. gpu=1234:0.8), got 'leaf=1:0.5'"),
    ("gpu=32:0.5", "gpu 32 does not exist: the cluster has 32 gpus (0 to 31)"),
    ("node=4:0.5", "node 4 does not exist: the cluster has 4 nodes (0 to 3)"),
    ("node=3:1.5", "expected a speed in (0, 1] (a share of nominal speed), got 1.5 in 'node=3:1.5'"),
    ("node=4:0", "node 4 does not exist"),  # the index is checked first
])
def test_a_bad_straggler_is_refused_by_name(text: str, message: str) -> None:
    """Each malformed or out-of-range ``--straggler`` gets one message naming the option and what was expected."""
    s = load_scenario(MEMPHIS, ["cluster.num_gpus=32", "training.global_batch=32"])
    with pytest.raises(InputError) as err:
        parse_straggler(text, s)
    assert err.value.field == "--straggler" and err.value.message.startswith(message)
