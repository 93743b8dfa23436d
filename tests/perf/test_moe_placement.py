"""Where a model's MoE layers sit (spec.model.Model.moe_layer_flags: leading dense layers, then every
moe.interleave_step-th layer MoE): the pipeline stages hold the layers the model places on them. Llama 4 Maverick
alternates dense and MoE layers; counted as 24 dense layers first, its last stage of two held all 24 MoE layers'
experts and did not fit where the real run did."""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
import pytest
from test_step import candidates, interleaved

from supercluster import build_scenario, perf
from supercluster.sim.run import simulate
from supercluster.spec.calibration import default_calibration
from supercluster.spec.model import Model, moe_layers_among
from supercluster.spec.scenario import Scenario
from supercluster.workload.memory import moe_in_first, moe_in_first_by_placement, moe_in_last, stage_params_at
from supercluster.workload.params import param_counts

A = np.asarray


def body(**moe: Any) -> dict[str, Any]:
    return {"name": "toy-moe", "layers": 8, "hidden": 1024, "ffn_hidden": 4096, "heads": 8, "vocab": 32000, "seq_len": 4096,
            "moe": {"experts": 8, "top_k": 2, "moe_ffn_hidden": 1024, **moe}}


@pytest.mark.parametrize(("moe", "flags"), [
    ({}, "MMMMMMMM"),
    ({"dense_layers": 3}, "DDDMMMMM"),
    ({"interleave_step": 2}, "DMDMDMDM"),  # Llama 4 interleave_moe_layer_step 2, Qwen decoder_sparse_step 2
    ({"dense_layers": 1, "interleave_step": 2}, "DDMDMDMD"),  # DeepSeek first_k_dense_replace 1, moe_layer_freq 2
    ({"interleave_step": 3}, "DDMDDMDD"),
])
def test_moe_layer_flags(moe: dict[str, Any], flags: str) -> None:
    m = Model.model_validate(body(**moe))
    assert "".join("M" if f else "D" for f in m.moe_layer_flags) == flags
    assert m.moe_layers == flags.count("M") and param_counts(m).moe_layers == flags.count("M")


def test_stage_counts_follow_the_placement() -> None:
    """MoE layers among the first and last n layers: dense-first gives the old closed forms (clip(n - d, 0, M) and
    min(n, M)), an alternating model half of n; a fractional n takes a share of its last layer."""
    first = Model.model_validate(body(dense_layers=4))
    alt = Model.model_validate(body(interleave_step=2))
    n = A([0.0, 1.0, 2.0, 4.0, 5.0, 8.0, 2.5])
    assert moe_in_first(first, n).tolist() == np.clip(n - 4.0, 0.0, 4.0).tolist()
    assert moe_in_last(first, n).tolist() == np.minimum(n, 4.0).tolist()
    # the closed form evaluate() takes for a dense-first model is the count off its placement, to the bit
    for m in (first, Model.model_validate(body()), Model.model_validate(body(dense_layers=8))):
        assert moe_in_first_by_placement(m, n).tolist() == moe_in_first(m, n).tolist()
    assert moe_in_first(alt, n).tolist() == [0.0, 0.0, 1.0, 2.0, 2.0, 4.0, 1.0]
    assert moe_in_last(alt, n).tolist() == [0.0, 1.0, 1.0, 2.0, 3.0, 4.0, 1.5]


@cache
def maverick(interleave: bool) -> Scenario:
    """Llama 4 Maverick on 128 GB200 (one NVL72 domain per rack), as it alternates (or as 24 dense layers first)."""
    moe = {"dense_layers": 0, "interleave_step": 2} if interleave else {"dense_layers": 24, "interleave_step": 1}
    return build_scenario({
        "name": f"maverick-{interleave}", "cluster": {"base": "colossus-2-gb200", "num_gpus": 128},
        "model": {"base": "llama4-maverick", "moe": {"experts": 128, "top_k": 1, "shared_experts": 1,
                                                     "moe_ffn_hidden": 8192, **moe}},
        "training": {"tokens": 1.0e12, "global_batch": 1024, "seq_len": 8192, "precision": "bf16"},
    }, check_rules=False)


def test_alternating_experts_split_over_two_stages() -> None:
    """Each of Maverick's two stages holds 12 MoE layers' experts; dense-first put all 24 on the last stage, twice
    its experts, and none on the first."""
    one = A([1.0])
    for stage in ("first", "last"):
        _, alt, _ = stage_params_at(maverick(True).model, stage, A([2.0]), one, A([64.0]), one)
        _, first, _ = stage_params_at(maverick(False).model, stage, A([2.0]), one, A([64.0]), one)
        assert alt[0] > 0
        assert (first[0] / alt[0]) == (0.0 if stage == "first" else 2.0)


def test_the_published_maverick_layout_fits_only_as_the_model_places_its_layers() -> None:
    """DGX Cloud's Maverick layout on 128 GB200 (TP1 PP2 VP12 EP64 DP64, micro-batch 1, no recompute) ran: it fits
    with the layers where the model has them, not with every MoE layer on the last stage. At pp 1 the placement
    changes nothing, to the bit."""
    cal = default_calibration()
    c = candidates(pp=[2, 1], dp=[64, 128], ep=[64, 128], virtual_stages=[12, 1])
    alt, first = (perf.evaluate(maverick(flag), c, cal) for flag in (True, False))
    assert alt.fits[0] and not first.fits[0]
    assert alt.memory.total_bytes[0] < first.memory.total_bytes[0]
    assert alt.step_time_s[1] == first.step_time_s[1] and alt.memory.total_bytes[1] == first.memory.total_bytes[1]


def test_the_simulator_places_the_same_layers() -> None:
    """The simulator's chunks hold each their own dense and MoE layers: it agrees with the analytic step within 5%
    on the alternating model across four stages of three chunks."""
    s = maverick(True)
    r = simulate(s, s.calibrated(None), interleaved(pp=4, dp=32, ep=32, virtual_stages=3)).report
    assert abs(r.rel_difference) <= 0.05, r.rel_difference


def test_a_copy_with_another_moe_block_places_its_own_layers() -> None:
    """The placement is derived from the moe block each time it is asked (a cache keyed by its numbers, not by the
    model), so a model copied with another block never answers with the first one's layers."""
    m = Model.model_validate(body(interleave_step=2))
    assert m.moe is not None and m.moe_layers == 4
    every = m.model_copy(update={"moe": m.moe.model_copy(update={"interleave_step": 1})})
    assert every.moe_layers == 8 and all(every.moe_layer_flags)


def test_moe_layers_among_a_range_and_past_the_last_layer() -> None:
    """The MoE layers a stage or chunk holds, counted off the placement; a layer past the last (a layout's MTP
    module) is of the last layer's kind."""
    alt = Model.model_validate(body(interleave_step=2)).moe_layer_flags  # D M D M D M D M
    assert [moe_layers_among(alt, a, n) for a, n in ((0, 8), (0, 3), (3, 2), (6, 2), (7, 2), (8, 1))] == [
        4, 1, 1, 1, 2, 1]
    first = Model.model_validate(body(dense_layers=8)).moe_layer_flags  # every layer dense
    assert moe_layers_among(first, 6, 3) == 0
