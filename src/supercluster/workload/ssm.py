"""The work of a Mamba mixer on one GPU (hybrids, spec.model.SSM: Mamba-2, and Mamba-1 where it differs): its
GEMMs, its scan and its memory-bound kernels, for arrays of parallel degrees, and how the state-space layers share a
pipeline stage.

Tensor parallelism splits the mixer as Megatron-Core's MambaMixer does (megatron/core/ssm/mamba_mixer.py; the
Mamba-2 paper, arXiv:2405.21060 §8, makes the block's projections parallel so that tensor parallelism splits it by
heads with the collectives of an attention block): the input projection is
column-parallel (z, x and dt by heads, B and C by groups, at least one group a rank as KV heads are replicated past
their count), the convolution, scan and gated norm run on the rank's heads, the output projection is row-parallel;
so a Mamba-2 layer has the tensor-parallel collectives of an attention layer (an all-gather before, a reduce-scatter
after, with sequence parallelism).

The scan kernel (Dao & Gu's ``mamba_chunk_scan_combined``, Triton) has no published efficiency on our accelerators:
its FLOPs (ssd_scan_flops_per_token_layer, the closed form of workload.flops) are timed as flash attention's over a
key length of one chunk (``chunk_size``), the SSD's intra-chunk part being attention over the Q tokens of a chunk
(§6) — an assumption; its backward at flash attention's 2.5x its forward. Mamba-1's selective scan (a recurrence,
Gu & Dao 2023 §3.3.2) is timed the same way at ``chunk_size`` (default 256) — a coarser assumption. Memory-bound
kernels of the mixer: the causal depthwise convolution over x, B and C (read and write) with its SiLU, and the
gated RMSNorm (read y and z, write).

Placement on pipeline stages: state-space layers are taken as spread evenly over the stages (the share of the whole
model on every stage); exact without a pipeline, and Nemotron-H interleaves one attention layer every 5 to 9.
"""

from __future__ import annotations

import numpy as np

from ..spec.model import Model
from .params import ssm_conv_channels

ACT_BYTES = 2  # as workload.operators (16-bit activations)


def ssd_scan_flops_per_token_layer(model: Model, seq_len: int) -> float:
    """Forward FLOPs of one token through one Mamba layer's scan: Mamba-2's SSD (workload.flops's docstring);
    Mamba-1's selective scan 9*d_inner*N + d_inner (discretisation, state update and readout per channel and state,
    plus the D skip: the count the Mamba authors give, state-spaces/mamba issue #110), linear in T and with no
    chunk; 0 without an SSM."""
    if model.ssm is None:
        return 0.0
    s = model.ssm
    if s.version == 1:
        return 9.0 * s.inner * s.state + float(s.inner)
    q = float(min(s.chunk_size, seq_len))
    hp = float(s.heads * s.head_dim)
    return 2.0 * q * (s.groups * s.state + hp) + 4.0 * hp * s.state + 2.0 * hp * s.state / q


def ssm_mixer_gemms(model: Model, T: np.ndarray, tp: np.ndarray) -> list[tuple[str, np.ndarray, np.ndarray,
                                                                                 np.ndarray]]:
    """(name, M, N, K) of the mixer's GEMMs per GPU: the input projection to z, x, B, C, dt and the output one;
    Mamba-1: the input projection to x and z, x_proj to dt, B, C (row-parallel over the channels: its partial sums
    are reduced over tp, a small collective left out), dt_proj, the output projection."""
    assert model.ssm is not None
    s, h = model.ssm, float(model.hidden)
    if s.version == 1:
        assert s.dt_rank is not None
        r = float(s.dt_rank)
        return [("ssm_in_proj", T, 2.0 * s.inner / tp, np.full_like(T, h)),
                ("ssm_x_proj", T, np.full_like(T, r + 2.0 * s.state), s.inner / tp),
                ("ssm_dt_proj", T, s.inner / tp, np.full_like(T, r)),
                ("ssm_out_proj", T, np.full_like(T, h), s.inner / tp)]
    groups_local = np.maximum(s.groups / tp, 1.0)
    width = (2.0 * s.inner + s.heads) / tp + 2.0 * groups_local * s.state
    return [("ssm_in_proj", T, width, np.full_like(T, h)),
            ("ssm_out_proj", T, np.full_like(T, h), s.inner / tp)]


def ssm_scan_flops(model: Model, seq_len: int, T: np.ndarray, tp: np.ndarray) -> np.ndarray:
    """Forward SSD scan FLOPs per GPU: T tokens on the rank's heads (1/tp of them)."""
    return T * ssd_scan_flops_per_token_layer(model, seq_len) / tp


def ssm_elementwise_bytes(model: Model, T: np.ndarray, tp: np.ndarray) -> np.ndarray:
    """Forward HBM bytes of the convolution (x, B, C read and written; Mamba-1: x) and of the gated norm (Mamba-1:
    the gate; y, z read, written)."""
    assert model.ssm is not None
    return (2.0 * ssm_conv_channels(model) + 3.0 * model.ssm.inner) / tp * T * ACT_BYTES


def scan_key_len(model: Model, seq_len: int) -> float:
    """The key length the scan kernel is timed at (module docstring): one chunk, at most the sequence."""
    assert model.ssm is not None
    return float(min(model.ssm.chunk_size, seq_len))


def ssm_layer_shares(model: Model) -> tuple[float, float]:
    """(share of the layers that are Mamba-2 with an MLP, share that are Mamba-2 without one): MLP-free layers
    are taken as Mamba-2 layers (Nemotron-H's are: the Mamba-2 block before each attention block)."""
    if model.ssm is None:
        return 0.0, 0.0
    bare = min(model.ssm.mlp_free_layers, model.ssm_layers)
    return (model.ssm_layers - bare) / model.layers, bare / model.layers
