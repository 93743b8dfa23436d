"""Offloading to host memory: searched only where it is needed, costed over the host link, bounded by host memory."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from supercluster.errors import InfeasibleError
from supercluster.perf.candidates import OFFLOAD_ACTIVATIONS, OFFLOAD_OPTIMIZER, OFFLOAD_WEIGHTS, Candidates
from supercluster.search import plan
from supercluster.search.space import fixed_offload, offload_variants
from supercluster.spec.catalog import entry
from supercluster.spec.load import build_scenario
from supercluster.spec.model import Model
from supercluster.spec.training import Parallelism
from supercluster.workload.memory import memory_per_gpu


def gpt3_on_16(**parallelism: Any) -> Any:
    """GPT-3 175B on two DGX A100 nodes: 2.8 TB of mixed-precision state against 1.28 TB of HBM."""
    return build_scenario({
        "name": "gpt3-175b-on-16-a100",
        "cluster": {"base": "selene", "num_gpus": 16},
        "model": "gpt3-175b",
        "training": {"tokens": 3.0e11, "global_batch": 256, "precision": "bf16"},
        "parallelism": parallelism or "auto",
    })


def test_gpt3_175b_on_16_a100_is_planned_with_offload() -> None:
    run = plan(gpt3_on_16(), with_reliability=False)
    report = run.step
    par = report.parallelism
    assert report.fits
    assert par["offload_optimizer"] or par["offload_weights"]
    offload = [k for k in report.breakdown if "offload" in k]
    assert offload and report.breakdown["offload"] > 0.0
    assert report.host_memory_bytes > 0.0
    assert "none fits without offloading" in run.search.offload


def test_without_offload_it_does_not_fit() -> None:
    with pytest.raises(InfeasibleError, match="no configuration .*fits in memory"):
        plan(gpt3_on_16(offload_optimizer=False, offload_weights=False, offload_activations=False),
             with_reliability=False)


def test_offload_is_not_chosen_when_something_fits_without_it() -> None:
    report = plan(build_scenario({"name": "small", "cluster": {"base": "selene", "num_gpus": 16},
                                  "model": "llama3-8b",
                                  "training": {"tokens": 1e10, "global_batch": 256, "precision": "bf16"},
                                  "parallelism": "auto"}), with_reliability=False).step
    assert not any(report.parallelism[k] for k in ("offload_optimizer", "offload_weights", "offload_activations"))
    assert report.breakdown["offload"] == 0.0


def test_variants_only_for_configurations_that_do_not_fit() -> None:
    c = Candidates.from_columns(tp=[1, 2], pp=[1, 1], dp=[8, 4], cp=[1, 1], ep=[1, 1], etp=[1, 1],
                                micro_batch=[1, 1], virtual_stages=[1, 1], recompute=[0, 0], zero_stage=[1, 1],
                                sp=[False, True])
    v = offload_variants(Parallelism(), c, np.array([True, False]))
    assert v is not None
    assert set(v.tp) == {2}  # only the one that did not fit
    assert set(v.offload) == {OFFLOAD_OPTIMIZER, OFFLOAD_ACTIVATIONS, OFFLOAD_OPTIMIZER | OFFLOAD_ACTIVATIONS,
                              OFFLOAD_OPTIMIZER | OFFLOAD_WEIGHTS,
                              OFFLOAD_OPTIMIZER | OFFLOAD_WEIGHTS | OFFLOAD_ACTIVATIONS}
    assert offload_variants(Parallelism(offload_optimizer=False, offload_weights=False, offload_activations=False),
                            c, np.array([False, False])) is None
    assert fixed_offload(Parallelism(offload_weights=True)) == (OFFLOAD_WEIGHTS | OFFLOAD_OPTIMIZER,
                                                               OFFLOAD_ACTIVATIONS)


def _memory(offload: int) -> Any:
    model = Model.model_validate(entry("models", "gpt3-175b"))
    one = np.ones(1)
    return memory_per_gpu(model, seq_len=2048, global_batch=256, grad_accum_fp32=True, flash_attention=True,
                          precision="bf16", tp=4 * one, pp=4 * one, dp=one, cp=one, ep=one, etp=one, micro_batch=one,
                          virtual_stages=one, recompute=np.array([2]), zero_stage=np.array([0]),
                          sp=np.array([True]), offload=np.array([offload]), stage="first")


@pytest.mark.parametrize(("bit", "part"), [(OFFLOAD_OPTIMIZER, "optimizer_bytes"),
                                           (OFFLOAD_OPTIMIZER | OFFLOAD_WEIGHTS, "weights_bytes"),
                                           (OFFLOAD_ACTIVATIONS, "activations_bytes")])
def test_each_offload_moves_its_part_to_the_host(bit: int, part: str) -> None:
    kept, moved = _memory(0), _memory(bit)
    assert float(getattr(moved, part)[0]) < float(getattr(kept, part)[0])
    assert float(moved.host_bytes[0]) > 0.0 and float(kept.host_bytes[0]) == 0.0
    # what leaves the GPU is what the host holds (the GPU total drops by exactly the host's share)
    assert float(kept.total_bytes[0] - moved.total_bytes[0]) == pytest.approx(float(moved.host_bytes[0]), rel=1e-9)


def test_no_host_figures_no_offload() -> None:
    """A part whose server the catalog does not describe (B200) cannot offload: such configurations never fit."""
    s = build_scenario({"name": "b200", "cluster": {"name": "b200x16", "accelerator": "B200", "num_gpus": 16,
                                                    "gpus_per_node": 8,
                                                    "scale_out_bandwidth_per_gpu_bytes_per_s": 50e9,
                                                    "fabric": "infiniband"},
                        "model": "gpt3-175b", "training": {"tokens": 3e11, "global_batch": 256},
                        "parallelism": {"offload_optimizer": True, "offload_activations": True,
                                        "offload_weights": True}})
    with pytest.raises(InfeasibleError):
        plan(s, with_reliability=False)


def test_per_op_checkpointing_is_searched_for_pytorch_software_only() -> None:
    from supercluster.perf.candidates import RECOMPUTE_CODES
    from supercluster.search import enumerate_space

    def codes(framework: str) -> set[int]:
        s = build_scenario({"name": "x", "cluster": {"base": "selene", "num_gpus": 16}, "model": "llama3-8b",
                            "training": {"tokens": 1e10, "global_batch": 256, "framework": framework}})
        return set(enumerate_space(s).recompute.tolist())

    assert RECOMPUTE_CODES["op"] in codes("pytorch")
    assert RECOMPUTE_CODES["op"] not in codes("megatron-lm")


def test_offloading_gets_what_the_nic_leaves_of_the_host_link() -> None:
    """On PCIe boards the NIC's GPUDirect RDMA traffic crosses the GPU's own x16 link: a faster NIC leaves less."""
    from supercluster.perf.step import host_link_bytes_per_s

    s = gpt3_on_16()
    host = s.cluster.accelerator.host
    assert host is not None and host.shared_with_nic
    left = host_link_bytes_per_s(s)
    assert left == pytest.approx(host.link_bytes_per_s - s.cluster.scale_out_bandwidth_per_gpu_bytes_per_s)
    assert host_link_bytes_per_s(s.model_copy(update={"cluster": s.cluster.model_copy(update={
        "scale_out_bandwidth_per_gpu_bytes_per_s": 1e12})})) == pytest.approx(0.1 * host.link_bytes_per_s)
