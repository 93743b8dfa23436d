"""Mixture-of-experts dispatch bytes: DeepEP's one copy per target node, one per target rank inside a single domain,
group-limited routing's cap, FP8 dispatch, contiguous (Automodel's balanced) routing; the plain all-to-all unchanged; DeepSeek-V3's groups read from its config.json; wrong groups refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from supercluster.errors import SuperclusterError
from supercluster.search.plan import best_step
from supercluster.spec.catalog import entry
from supercluster.spec.hf import model_from_hf_config
from supercluster.spec.load import build_scenario, load_scenario
from supercluster.spec.model import Model, MoE
from supercluster.spec.training import Training
from supercluster.workload.dispatch import (
    contiguous_reach,
    dispatch_bytes_factor,
    dispatch_group,
    nodes_reached,
    ranks_reached,
)

HF = Path(__file__).resolve().parent.parent / "data" / "hf"
SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def deepseek_v3() -> Model:
    return Model.model_validate(entry("models", "deepseek-v3"))


def training(**changes: object) -> Training:
    return Training.model_validate({"tokens": 1e9, "global_batch": 64, **changes})


def test_nodes_a_token_reaches() -> None:
    """k experts spread evenly over N nodes reach N(1 - (1 - 1/N)^k) of them; group-limited routing caps it."""
    free = deepseek_v3().model_copy(update={"moe": deepseek_v3().moe.model_copy(update={"groups": None,  # type: ignore[union-attr]
                                                                                        "top_groups": None})})
    assert nodes_reached(free, np.array([8.0]))[0] == pytest.approx(8 * (1 - (7 / 8) ** 8))
    assert nodes_reached(free, np.array([1.0]))[0] == pytest.approx(1.0)
    assert nodes_reached(deepseek_v3(), np.array([8.0]))[0] == 4.0  # DeepSeek-V3: at most 4 nodes
    assert nodes_reached(deepseek_v3(), np.array([2.0]))[0] < 2.0 + 1e-12


def test_deepep_sends_a_copy_per_node_and_fp8_dispatch() -> None:
    """A copy per node reached; fp8 values out in an fp8 run of DeepSeek's framework (DeepSeek-V3 §3.3.2), 16-bit
    hidden states in Megatron-LM's (moe_dispatch_fwd_dtype 'bf16': its expert GEMMs quantize them)."""
    nodes, ranks = np.array([8.0]), np.array([64.0])
    assert dispatch_bytes_factor(deepseek_v3(), training(moe_dispatcher="alltoall"), nodes, ranks)[0] == 1.0
    # unset: DeepEP for software with fused attention, the plain all-to-all before
    assert dispatch_bytes_factor(deepseek_v3(), training(), nodes, ranks)[0] == pytest.approx(4 / 8)
    assert dispatch_bytes_factor(deepseek_v3(), training(flash_attention=False), nodes, ranks)[0] == 1.0
    bf16 = dispatch_bytes_factor(deepseek_v3(), training(moe_dispatcher="deepep"), nodes, ranks)[0]
    assert bf16 == pytest.approx(4 / 8)
    fp8 = dispatch_bytes_factor(deepseek_v3(), training(moe_dispatcher="deepep", precision="fp8",
                                                        framework="hai-llm"), nodes, ranks)[0]
    assert fp8 == pytest.approx(4 / 8 * ((1 + 4 / 128) / 2 + 1) / 2)
    megatron = dispatch_bytes_factor(deepseek_v3(), training(moe_dispatcher="deepep", precision="fp8"), nodes, ranks)
    assert megatron[0] == pytest.approx(bf16)


def free_routing(top_k: int = 8) -> Model:
    """DeepSeek-V3's experts without group-limited routing."""
    m = deepseek_v3()
    return m.model_copy(update={"moe": m.moe.model_copy(update={"groups": None, "top_groups": None,  # type: ignore[union-attr]
                                                                "top_k": top_k})})


def test_inside_one_domain_deepep_sends_a_copy_per_rank() -> None:
    """EP8 inside one NVLink domain: a token reaches 8 (1 - (7/8)^8) = 5.25 of the 8 ranks and is sent once to each
    (DeepEP intranode), 0.66 of the plain all-to-all's 8 copies, not the single node's one copy (1/8)."""
    deepep = training(moe_dispatcher="deepep")
    one_node = dispatch_bytes_factor(free_routing(), deepep, np.array([1.0]), np.array([8.0]))[0]
    assert one_node == pytest.approx(8 * (1 - (7 / 8) ** 8) / 8)
    # over the network the node count rules as before
    two_nodes = dispatch_bytes_factor(free_routing(), deepep, np.array([2.0]), np.array([16.0]))[0]
    assert two_nodes == pytest.approx(2 * (1 - (1 / 2) ** 8) / 8)


def test_ranks_reached_grows_with_the_group_and_never_exceeds_top_k_or_ranks() -> None:
    """More ranks spread a token's experts over more of them, up to top_k; one rank is reached once; group-limited
    routing confines a token to the ranks of its top_groups groups."""
    ranks = np.array([1.0, 2.0, 4.0, 8.0, 16.0, 64.0, 1024.0])
    reached = ranks_reached(free_routing(), ranks)
    assert reached[0] == pytest.approx(1.0)
    assert np.all(np.diff(reached) > 0)
    assert np.all(reached <= np.minimum(ranks, 8.0) + 1e-12)
    # DeepSeek-V3: 8 groups, a token in 4 of them; on 8 ranks (a group each) at most 4 ranks
    limited = ranks_reached(deepseek_v3(), np.array([8.0]))[0]
    assert limited == pytest.approx(4 * (1 - (3 / 4) ** 8))
    # top_k 1: one copy whatever the group, so DeepEP sends what the plain all-to-all sends
    assert dispatch_bytes_factor(free_routing(1), training(moe_dispatcher="deepep"), np.array([1.0]),
                                 np.array([8.0]))[0] == pytest.approx(1.0)


def test_deepseek_scenario_hides_less_with_a_plain_all_to_all() -> None:
    s = load_scenario(SCENARIOS / "deepseek-v3-2048-h800.yaml")
    deepep, _ = best_step(s)
    plain, _ = best_step(s.model_copy(update={"training": s.training.model_copy(
        update={"moe_dispatcher": "alltoall"})}))
    assert deepep.step_time_s < plain.step_time_s
    assert deepep.breakdown["ep_comm"] <= plain.breakdown["ep_comm"]


def test_groups_read_from_deepseek_config() -> None:
    model = Model.model_validate(model_from_hf_config(HF / "DeepSeek-V3" / "config.json"))
    assert model.moe is not None and (model.moe.groups, model.moe.top_groups) == (8, 4)
    kimi = Model.model_validate(model_from_hf_config(HF / "Kimi-K2-Base" / "config.json"))  # n_group 1: not group-limited
    assert kimi.moe is not None and kimi.moe.groups is None


@pytest.mark.parametrize(("moe", "message"), [
    ({"groups": 8}, "groups and top_groups go together"),
    ({"groups": 7, "top_groups": 4}, "does not divide experts"),
    ({"groups": 8, "top_groups": 9}, "exceeds groups"),
])
def test_wrong_groups_refused(moe: dict[str, int], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        MoE.model_validate({"experts": 256, "top_k": 8, "moe_ffn_hidden": 2048, **moe})


def test_wrong_groups_in_a_scenario_are_located() -> None:
    with pytest.raises(SuperclusterError, match="model.moe"):
        build_scenario({"name": "g", "cluster": {"base": "eos", "num_gpus": 64},
                        "model": {"base": "deepseek-v3", "moe": {"groups": 7}},
                        "training": {"tokens": 1e9, "global_batch": 64}})


def test_contiguous_routing_reaches_neighbouring_ranks() -> None:
    """NeMo Automodel's FakeBalancedGate gives token t the experts t*k .. t*k+k-1 (mod E): with E/ep experts a rank
    they lie on ceil-ish k/(E/ep) neighbouring ranks, counted exactly over the starting experts."""
    # DeepSeek-V3 (256 experts, top-8) over EP64 on 8 nodes: 4 experts a rank, each token on 2 ranks of one node
    ranks, nodes = contiguous_reach(256, 8, np.array([64.0]), np.array([8.0]))
    assert (ranks[0], nodes[0]) == (2.0, 1.0)
    # Kimi K2 (384, top-8) over EP32: 12 a rank; starts 0, 8, 4 (mod 12) reach 1, 2, 1 ranks
    ranks, _ = contiguous_reach(384, 8, np.array([32.0]), np.array([4.0]))
    assert ranks[0] == pytest.approx(4 / 3)
    # Qwen3-30B (128, top-8) over EP8 in one node: 16 a rank, one rank
    ranks, nodes = contiguous_reach(128, 8, np.array([8.0, 16.0]), np.array([1.0, 2.0]))
    assert ranks.tolist() == [1.0, 1.0] and nodes.tolist() == [1.0, 1.0]


def test_contiguous_routing_sends_fewer_deepep_bytes_than_random() -> None:
    m = free_routing()
    nodes, ranks = np.array([8.0, 1.0]), np.array([64.0, 8.0])
    random = dispatch_bytes_factor(m, training(moe_dispatcher="deepep"), nodes, ranks)
    contiguous = dispatch_bytes_factor(m, training(moe_dispatcher="deepep", moe_routing="contiguous"), nodes, ranks)
    np.testing.assert_allclose(contiguous, [1 / 8, 1 / 8])  # one node across nodes; one rank of 32 experts inside
    assert (contiguous < random).all()
    # the plain all-to-all sends a copy per routed expert whatever the routing
    assert dispatch_bytes_factor(m, training(moe_dispatcher="alltoall", moe_routing="contiguous"), nodes,
                                 ranks).tolist() == [1.0, 1.0]


def test_the_dispatch_group_spans_the_expert_shards_only_for_the_flex_dispatcher() -> None:
    """Megatron-Core: the flex dispatcher (DeepEP) sends over ep x etp neighbouring ranks; the all-to-all one over the
    ep ranks of the expert-parallel group, etp apart (it gathers over the shards afterwards). Reports name the wider
    group ep x etp."""
    from supercluster.perf.report import group_label

    ep, etp = np.array([8.0, 8.0]), np.array([1.0, 4.0])
    size, stride = dispatch_group(training(moe_dispatcher="deepep"), ep, etp)
    np.testing.assert_array_equal(size, [8.0, 32.0])
    np.testing.assert_array_equal(stride, [1.0, 1.0])
    size, stride = dispatch_group(training(moe_dispatcher="alltoall"), ep, etp)
    np.testing.assert_array_equal(size, [8.0, 8.0])
    np.testing.assert_array_equal(stride, [1.0, 4.0])
    par = {"ep": 8, "etp": 4, "cp": 1}
    assert group_label("ep", {"size": 32}, par) == "ep × etp"
    assert group_label("ep", {"size": 8}, par) == "ep"
    assert group_label("dp", {"size": 64}, {**par, "cp": 2}) == "dp × cp"


def test_deepep_dispatches_to_every_shard_inside_a_domain_and_once_per_node_across() -> None:
    """With experts split by expert tensor parallelism, DeepEP's bytes inside one domain grow with the shards (a rank
    each); across nodes they do not (an expert's shards share its node); the plain all-to-all's never do."""
    model, t = deepseek_v3(), training(moe_dispatcher="deepep")
    for nodes in (np.array([1.0]), np.array([4.0])):
        one, four = (dispatch_bytes_factor(model, t, nodes, np.array([8.0]), etp) for etp in (1.0, 4.0))
        np.testing.assert_allclose(four, one * (4.0 if nodes[0] == 1 else 1.0), rtol=1e-15)
    plain = training(moe_dispatcher="alltoall")
    assert dispatch_bytes_factor(model, plain, np.array([1.0]), np.array([8.0]), 4.0)[0] == 1.0
