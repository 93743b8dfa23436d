"""What a mixture-of-experts dispatch puts on the network: bytes relative to a plain all-to-all.

A plain all-to-all (Megatron-LM's alltoall dispatcher) sends each token once per routed expert: of its top_k copies
the share on other nodes crosses the network, (N - 1)/N of them for an expert-parallel group spread over N nodes.
DeepSeek's dispatch (DeepSeek-V3 report, arXiv:2412.19437 §3.2.2; deepseek-ai/DeepEP's internode kernels) sends a
token once to each node that holds any of its experts, to the GPU of the same local index there, which forwards it
over NVLink to the experts' GPUs; the combine returns the same way. A token's k experts drawn evenly over N nodes
reach N (1 - (1 - 1/N)^k) of them on average; group-limited routing (MoE.groups, top_groups, the groups laid out on
nodes) caps that at top_groups (DeepSeek-V3: at most 4 nodes). The network bytes are then that many copies over k.
In an FP8 run the dispatch (forward, and the activation gradients before the down-projection in the backward) moves
FP8 values with one fp32 scale per 128 (1 + 4/128 bytes an element) while the combine stays BF16 (report §3.3.2;
an fp4 run dispatches the same way, quantization.py): on average over dispatch and combine, (1.03/2 + 1)/2 of the
16-bit bytes.

The all-to-all is timed on these bytes as one collective (network.cost), its NVLink share taken in proportion (the
fan-out inside a node is faster than the network and rarely the bottleneck): an approximation, stated.
An expert-parallel group inside one scale-up domain has no network part: there DeepEP's intranode kernels send a
token once to each rank that holds any of its experts (deepseek-ai/DeepEP csrc/kernels/intranode.cu @b87e255,
the dispatch skips a rank whose is_token_in_rank is false; csrc/kernels/legacy/ since EPv2), so the bytes are the
ranks reached over k:
R (1 - (1 - 1/R)^k) of the R ranks a token's experts may lie on (all ep ranks, or with group-limited routing
those holding its top_groups groups), not the single node's one copy, which would price an NVLink dispatch at
1/k of the plain all-to-all's bytes.
Where a token's experts lie depends on the routing: a trained router's choices (and Megatron-Core's forced load
balance, random logits: router.py apply_random_logits) fall as if drawn evenly, as above; NeMo Automodel's
FakeBalancedGate (its benchmarks' balanced routing, nemo_automodel/components/moe/layers.py @8d9bfb90e3) gives token
t the k consecutive experts t k .. t k + k - 1 (mod E), which sit on one or two neighbouring ranks of the expert-
parallel group laid out in order (E/ep experts a rank): the ranks and nodes reached are then counted exactly over
the E / gcd(E, k) distinct starting experts (contiguous_reach).
"""

from __future__ import annotations

import math

import numpy as np

from ..spec.model import Model
from ..spec.software import framework_software
from ..spec.training import Training, moe_dispatcher_of
from .quantization import QUANTIZED_DISPATCH_BYTES, low_precision


def dispatch_group(training: Training, ep: np.ndarray, etp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(size, rank stride) of the group an MoE layer's dispatch spans, with experts split by expert tensor parallelism
    (etp > 1) too (Megatron-Core transformer/moe/token_dispatcher.py @d98e8a64dd): the flex dispatcher (DeepEP,
    HybridEP) sends over the expert-tensor x expert-parallel group, ep x etp neighbouring ranks (an expert's shards
    neighbours, so across nodes a token still goes once to each node its experts are on); the all-to-all one over the
    expert-parallel group, ep ranks etp apart, and all-gathers what it received over the etp shards after."""
    ep, etp = np.asarray(ep, dtype=np.float64), np.asarray(etp, dtype=np.float64)
    if moe_dispatcher_of(training) == "deepep":
        return ep * etp, np.ones_like(etp)
    return ep, etp


def _distinct(places: np.ndarray, k: float) -> np.ndarray:
    """Average distinct places ``k`` picks drawn evenly over ``places`` places land on: n (1 - (1 - 1/n)^k)."""
    out: np.ndarray = places * (1.0 - (1.0 - 1.0 / places) ** k)
    return out


def nodes_reached(model: Model, nodes: np.ndarray) -> np.ndarray:
    """Average distinct nodes a token's top_k experts lie on, the expert-parallel group spread over ``nodes``."""
    assert model.moe is not None
    n = np.maximum(np.asarray(nodes, dtype=np.float64), 1.0)
    reached = _distinct(n, float(model.moe.top_k))
    if model.moe.top_groups is not None:
        reached = np.minimum(reached, float(model.moe.top_groups))
    return reached


def ranks_reached(model: Model, ranks: np.ndarray) -> np.ndarray:
    """Average distinct ranks a token's top_k experts lie on, the experts spread evenly over ``ranks`` ranks; with
    group-limited routing, over the ranks that hold its top_groups groups (groups laid out in rank order)."""
    assert model.moe is not None
    r = np.maximum(np.asarray(ranks, dtype=np.float64), 1.0)
    if model.moe.groups is not None and model.moe.top_groups is not None:
        ranks_per_group = np.maximum(r / float(model.moe.groups), 1.0)
        r = np.minimum(r, float(model.moe.top_groups) * ranks_per_group)
    return _distinct(r, float(model.moe.top_k))


def contiguous_reach(experts: int, k: int, ranks: np.ndarray, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Average distinct ranks and nodes a token's k consecutive experts (starting at t k mod E) lie on, the E experts
    split in order over ``ranks`` ranks (E/ranks each), the ranks in order over ``nodes`` nodes."""
    ranks = np.maximum(np.asarray(ranks, dtype=np.float64), 1.0)
    nodes = np.maximum(np.broadcast_to(np.asarray(nodes, dtype=np.float64), ranks.shape), 1.0)
    starts = (np.arange(experts // math.gcd(experts, k)) * k) % experts
    picked = (starts[:, None] + np.arange(k)[None, :]) % experts  # [start, j]
    pairs, inverse = np.unique(np.stack([ranks.ravel(), nodes.ravel()], axis=1), axis=0, return_inverse=True)
    rank = np.floor(picked[None] * pairs[:, 0, None, None] / experts)  # [pair, start, j]
    node = np.floor(rank * (pairs[:, 1] / pairs[:, 0])[:, None, None])

    def distinct(x: np.ndarray) -> np.ndarray:  # mean over the starts of the distinct values among the k
        per_pair = (1.0 + (np.diff(np.sort(x, axis=-1), axis=-1) != 0).sum(axis=-1)).mean(axis=-1)
        return per_pair[inverse.ravel()].reshape(ranks.shape)

    return distinct(rank), distinct(node)


def dispatch_bytes_factor(model: Model, training: Training, nodes: np.ndarray, ranks: np.ndarray,
                          etp: np.ndarray | float = 1.0) -> np.ndarray:
    """The bytes of a dispatch and combine over those of a plain all-to-all of 16-bit top_k copies, the
    expert-parallel group of ``ranks`` ranks spread over ``nodes`` scale-up domains: over the network one copy per
    node reached, inside a single domain one copy per rank reached, each expert's ``etp`` shards a rank each (its
    shards are neighbours: across nodes they cost no copy more, dispatch_group). The plain all-to-all moves the
    top_k copies whatever etp (its gather over the shards is its own collective)."""
    nodes = np.asarray(nodes, dtype=np.float64)
    one = np.ones_like(nodes)
    if moe_dispatcher_of(training) != "deepep" or model.moe is None:
        return one
    k = float(model.moe.top_k)
    if training.moe_routing == "contiguous":
        by_rank, by_node = contiguous_reach(model.moe.experts, model.moe.top_k, ranks * one, nodes)
        reached = np.where(nodes > 1.0, by_node, by_rank)
    else:
        reached = np.where(nodes > 1.0, nodes_reached(model, nodes), ranks_reached(model, ranks * one))
    dedup = np.where(nodes > 1.0, 1.0, etp) * reached / k
    # fp8 values + scales out, a 16-bit combine back, where the framework quantizes the dispatch (DeepSeek's); Megatron-
    # Core sends the 16-bit hidden states (moe_dispatch_fwd_dtype 'bf16' by default, HybridEP 'does not support fp8
    # dispatch', its DeepEP path passes the bf16 tensor: transformer_config.py, moe/fused_a2a.py @d98e8a64dd)
    quantized = (low_precision(training.precision) is not None
                 and framework_software(training.framework).moe_dispatch_fp8)
    precision = (QUANTIZED_DISPATCH_BYTES / 2.0 + 1.0) / 2.0 if quantized else 1.0
    return dedup * precision
