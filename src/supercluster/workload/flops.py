"""FLOPs per token: the model FLOPs of the PaLM convention (MFU) and what the hardware executes (HFU).

PaLM (Chowdhery et al. 2022, Appendix B): model FLOPs per token = 6*N + 12*L*H*Q*T, with N the non-embedding
parameters (for MoE, those a token activates), L layers, H heads, Q head dim, T sequence length; no recompute.
For MLA the attention term is 6*L*T*H*(d_qk + d_v), which is 12*L*H*Q*T when d_qk = d_v = Q.
The input embedding lookup and the LM head are left out of N, as in that convention (DESIGN.md).

Sliding-window layers: the attention term of a windowed layer counts the keys its queries attend, T replaced by the
equivalent key length s_eq(T, w) = T * k(T, w)/k(T, T) (workload.window), so the MFU counts the attention a windowed
model defines and computes, not the full-length attention PaLM's formula would charge it; the hardware FLOPs
(recompute, executed causal kernels) count the same windowed attention, so MFU <= HFU still holds. A model without
windowed layers (or with a window covering the sequence) gets PaLM's count to the bit.

Mamba-2 layers (hybrids, spec.model.SSM): no attention term; their mixer's projections are in N (6N), and the scan
adds the SSD algorithm's FLOPs (Dao & Gu 2024, arXiv:2405.21060 §6: the sequence cut into chunks of Q tokens;
per token and layer, forward, with H heads of P channels, state N, G groups sharing B and C):
  intra-chunk C·Bᵀ over the Q tokens of its chunk, per group        2·Q·G·N
  the masked, decayed scores times X, per head                      2·Q·H·P
  chunk states Bᵀ·X and the output from the carried state C·h        2·2·H·N·P
  the recurrence between chunks (one H·N·P update per chunk)         2·H·N·P/Q
with Q = min(chunk_size, T) and the diagonal blocks counted whole, as the kernel computes them (the PaLM habit of
not halving causal work). Linear in T, against the attention term's T²: a hybrid at long sequences costs far less.
Mamba-1 layers (Jamba) scan 9*d_inner*N + d_inner FLOPs a token (workload.ssm), no chunk.
The backward is taken as twice the forward, as for every other term (3x forward in all); the MFU counts the scan
as PaLM counts attention, and recompute repeats it as it repeats the attention core (full and selective).
"""

from __future__ import annotations

import numpy as np

from ..spec.model import Model
from ..spec.training import SELECTIVE_DEFAULT, LoRA
from .lora import adapter_active_params
from .operators import MODULE_GEMMS, attention_dims, attention_gemms
from .params import param_counts
from .ssm import ssd_scan_flops_per_token_layer
from .window import effective_window, equivalent_key_len


def attention_flops_per_token_layer(model: Model, seq_len: int, window: int | None = None) -> float:
    """Forward attention score + context FLOPs of one token in one layer (non-causal, PaLM), over the keys of a
    ``window`` (None: a full layer)."""
    d_qk, d_v = attention_dims(model)
    return 2.0 * equivalent_key_len(seq_len, window) * model.heads * (d_qk + d_v)


def attention_flops_per_token(model: Model, seq_len: int) -> float:
    """Forward attention FLOPs of one token through every layer: full layers over s keys, windowed ones over theirs,
    Mamba-2 layers over their SSD scan (module docstring)."""
    window = effective_window(model, seq_len)
    full = attention_flops_per_token_layer(model, seq_len)
    scan = model.ssm_layers * ssd_scan_flops_per_token_layer(model, seq_len) if model.ssm else 0.0
    if window is None:
        return model.attention_layers * full + scan
    n_window = model.windowed_layers
    return ((model.attention_layers - n_window) * full
            + n_window * attention_flops_per_token_layer(model, seq_len, window) + scan)


def forward_flops_per_token(model: Model, seq_len: int) -> float:
    """One forward pass's model FLOPs per token, PaLM convention: 2N + the attention term, a third of training's
    (an evaluation pass, inference)."""
    return 2.0 * param_counts(model).non_embedding_active + attention_flops_per_token(model, seq_len)


def model_flops_per_token(model: Model, seq_len: int, lora: LoRA | None = None) -> float:
    """Training (fwd + bwd) model FLOPs per token, PaLM convention (windowed layers over their window, Mamba-2
    layers over their scan). Under LoRA (workload.lora) the frozen weights need no weight gradient: 4N for them
    (forward and input gradient) and 6 per adapter parameter, the attention term unchanged."""
    n = param_counts(model).non_embedding_active
    attention = 3.0 * attention_flops_per_token(model, seq_len)
    if lora is not None:
        return 4.0 * n + 6.0 * adapter_active_params(model, lora) + attention
    return 6.0 * n + attention


def lm_head_flops_per_token(model: Model) -> float:
    """Training FLOPs of the LM head (executed, outside the PaLM N)."""
    return 6.0 * model.vocab * model.hidden


def op_recompute_share(model: Model) -> float:
    """Share of a layer's projection FLOPs that torchtitan's per-op selective checkpointing recomputes: it saves the
    output of every other matmul (the 1st, 3rd, ... of a layer: wq, wv, w1, w2 of wq wk wv wo w1 w3 w2) and of the
    attention core (torchtitan distributed/activation_checkpoint.py, _save_list and the mm_count policy), so the 2nd,
    4th and 6th (wk, wo, w3) run again."""
    h, f = model.hidden, model.ffn_hidden
    q, kv = model.heads * model.d_head, model.n_kv_heads * model.d_head
    sizes = [h * q, h * kv, h * kv, q * h] + ([h * f, h * f, f * h] if model.activation == "swiglu"
                                               else [h * f, f * h])
    return sum(sizes[1::2]) / sum(sizes)


def recompute_flops_per_token(model: Model, seq_len: int, recompute: str,
                              modules: frozenset[str] = SELECTIVE_DEFAULT) -> float:
    """Extra forward FLOPs per token that activation recomputation executes.

    full: the forward of every layer again (Megatron's full-layer checkpointing, 2*N + attention);
    selective: its ``modules`` (spec.training.selective_modules), by default the attention core only (Korthikanti
    et al. 2022, §5): a dense MLP's, a MoE layer's (router and the token's experts), the shared experts' and MLA's
    up-projections' matmuls again (norms and activations are elementwise); op: every other projection
    (op_recompute_share).
    """
    if recompute == "op":
        return op_recompute_share(model) * 2.0 * param_counts(model).non_embedding_active
    if recompute == "full":
        return 2.0 * param_counts(model).non_embedding_active + attention_flops_per_token(model, seq_len)
    if recompute == "selective":
        pc = param_counts(model)
        out = attention_flops_per_token(model, seq_len) if "core_attn" in modules else 0.0
        if "mlp" in modules:
            out += 2.0 * pc.dense_mlp_layer * pc.dense_mlps
        if "moe" in modules:
            out += 2.0 * (pc.moe_active_routed_layer + pc.router_layer) * pc.moe_mlps
        if "shared_experts" in modules:
            out += 2.0 * pc.moe_shared_layer * pc.moe_mlps
        if "mla_up_proj" in modules:  # the up-projections' weights, as the step model times them
            one = np.ones(1)
            up = sum(float((g.n * g.k)[0]) for g in attention_gemms(model, one, one)
                     if g.name in MODULE_GEMMS["mla_up_proj"])
            out += 2.0 * up * model.layers
        return out
    return 0.0
