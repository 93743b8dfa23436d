"""Parameter counts of a transformer, total and active (what one token touches).

Per layer (no biases; norms count their scale vector):
- attention, MHA/GQA/MQA: q h*H*d, k and v h*kv*d each, output H*d*h (Vaswani et al. 2017; Ainslie et al. 2023 GQA);
- attention, MLA (DeepSeek-V2/V3, arXiv:2405.04434 §2.1): q = h*q_lora + q_lora*H*(d_nope+d_rope) (or h*H*(d_nope+d_rope)
  without a q low-rank), kv down h*(kv_lora+d_rope), kv up kv_lora*H*(d_nope+d_v), output H*d_v*h, plus the two
  latent norms;
- MLP: 2*h*f (GeLU/ReLU) or 3*h*f (gated: SwiGLU, GeGLU; Shazeer 2020);
- MoE: E routed experts and S shared experts of the gated/ungated MLP shape, router h*E (Fedus et al. 2021);
- two norms of h.
- Mamba-2 mixer in place of attention (Dao & Gu 2024, arXiv:2405.21060, §7.1 and Figure 6; Nemotron-H,
  arXiv:2504.03624 §2.1): one input projection h*(2*d_inner + 2*G*N + H_s) to z, x, B, C and dt (d_inner = H_s*P,
  G groups, state N, H_s heads of P channels), a depthwise causal convolution over x, B and C
  ((d_inner + 2*G*N)*(k + 1) with its bias), A, D and the dt bias (H_s each), the gated norm (d_inner) and the
  output projection d_inner*h; a layer without an MLP (ssm.mlp_free_layers) has one norm instead of two.
  Mamba-1 (Gu & Dao 2023, arXiv:2312.00752, §3.4 and mamba_ssm's Mamba module): in_proj h*2*d_inner to x and z,
  the convolution over x d_inner*(k + 1), x_proj d_inner*(R + 2N) to dt, B and C, dt_proj R*d_inner + d_inner,
  A d_inner*N, D d_inner, out_proj d_inner*h (no gated norm; Jamba's three small norms of dt, B and C, R + 2N
  weights a layer, are left out).
Embedding V*h, LM head V*h unless tied, final norm h. Learned position embeddings (GPT-3's 2048*h) are left out:
<0.02% of any model here.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..spec.model import Model


def mlp_matrices(model: Model) -> int:
    """Weight matrices per MLP: 3 for gated activations (SwiGLU), 2 otherwise."""
    return 3 if model.activation == "swiglu" else 2


NORMS_PER_LAYER = 2  # before the mixer and before the MLP


def layer_small_tensors(model: Model, weights: int) -> int:
    """Parameter tensors of a layer besides its ``weights`` weight matrices: a bias per matrix when the model's
    projections carry biases, and each norm's weight and, LayerNorm, bias (Model.norm_and_bias). A framework that
    shards and gathers parameter by parameter (DeepSpeed's ZeRO-3 before 0.6) runs a collective for each; their
    elements (a hidden size or a few each) are left out of the parameter counts."""
    norm, bias = model.norm_and_bias
    return NORMS_PER_LAYER * (2 if norm == "layernorm" else 1) + (weights if bias else 0)


def attention_params(model: Model) -> int:
    h, H = model.hidden, model.heads
    if model.attention == "mla":
        m = model.mla
        assert m is not None  # guaranteed by Model validation
        qk = m.qk_nope_head_dim + m.qk_rope_head_dim
        q = h * m.q_lora_rank + m.q_lora_rank + m.q_lora_rank * H * qk if m.q_lora_rank else h * H * qk
        kv = h * (m.kv_lora_rank + m.qk_rope_head_dim) + m.kv_lora_rank + m.kv_lora_rank * H * (
            m.qk_nope_head_dim + m.v_head_dim)
        return q + kv + H * m.v_head_dim * h
    d, kv_heads = model.d_head, model.n_kv_heads
    return h * H * d + 2 * h * kv_heads * d + H * d * h


def dense_mlp_params(model: Model) -> int:
    return mlp_matrices(model) * model.hidden * model.ffn_hidden


def expert_params(model: Model) -> int:
    """One routed expert."""
    assert model.moe is not None
    return mlp_matrices(model) * model.hidden * model.moe.moe_ffn_hidden


def shared_expert_params(model: Model) -> int:
    """All shared experts of one MoE layer."""
    assert model.moe is not None
    width = model.moe.shared_ffn_hidden or model.moe.moe_ffn_hidden
    return model.moe.shared_experts * mlp_matrices(model) * model.hidden * width


def ssm_conv_channels(model: Model) -> int:
    """Channels of the Mamba-2 convolution: x, B and C (d_inner + 2*G*N)."""
    assert model.ssm is not None
    s = model.ssm
    return s.inner if s.version == 1 else s.inner + 2 * s.groups * s.state


def ssm_in_proj_width(model: Model) -> int:
    """Output width of the input projection: z, x, B, C and dt (Mamba-2); z and x (Mamba-1)."""
    assert model.ssm is not None
    if model.ssm.version == 1:
        return 2 * model.ssm.inner
    return model.ssm.inner + ssm_conv_channels(model) + model.ssm.heads


def ssm_mixer_params(model: Model) -> int:
    """One Mamba-2 mixer (module docstring); 0 for a model without state-space layers."""
    if model.ssm is None:
        return 0
    s, h = model.ssm, model.hidden
    width = ssm_in_proj_width(model)
    conv = ssm_conv_channels(model) * (s.conv_kernel + (1 if s.conv_bias else 0))
    bias = (width + h) if s.proj_bias else 0
    if s.version == 1:
        assert s.dt_rank is not None  # guaranteed by SSM validation
        x_proj = s.inner * (s.dt_rank + 2 * s.state)
        dt_proj = s.dt_rank * s.inner + s.inner
        return h * width + conv + x_proj + dt_proj + s.inner * s.state + s.inner + s.inner * h + bias
    return h * width + conv + 3 * s.heads + s.inner + s.inner * h + bias


@dataclass(frozen=True)
class ParamCounts:
    """Parameter counts; ``*_layer`` figures are for one layer of that kind."""

    attention_layer: int
    norms_layer: int
    dense_mlp_layer: int
    moe_routed_layer: int  # all routed experts of one MoE layer
    moe_active_routed_layer: int  # the top_k experts a token uses
    moe_shared_layer: int
    router_layer: int
    dense_layers: int
    moe_layers: int
    embedding: int
    lm_head: int  # 0 when tied to the embedding
    final_norm: int
    ssm_mixer_layer: int = 0  # one Mamba-2 mixer
    ssm_layers: int = 0  # layers whose mixer is Mamba-2 instead of attention
    mlp_free_layers: int = 0  # layers without an MLP (and one norm fewer): dense, or MoE where every MLP is MoE

    @property
    def moe_mlp_free(self) -> int:
        """MLP-free layers among the MoE layers (a model whose every MLP is MoE: spec.model), the rest dense."""
        return self.mlp_free_layers if self.moe_layers and not self.dense_layers else 0

    @property
    def dense_mlps(self) -> int:
        """Dense layers that have their MLP."""
        return self.dense_layers - (self.mlp_free_layers - self.moe_mlp_free)

    @property
    def moe_mlps(self) -> int:
        """MoE layers that have their experts (and shared experts and router)."""
        return self.moe_layers - self.moe_mlp_free

    def _hybrid_correction(self, routed: int) -> int:
        """What the state-space layers change against counting every layer as attention + MLP: each Mamba-2 layer's
        mixer in place of attention, each MLP-free layer without its MLP (a dense layer's, or an MoE layer's
        ``routed`` experts, shared experts and router) and its second norm (0 for a transformer)."""
        return self.ssm_layers * (self.ssm_mixer_layer - self.attention_layer) \
            - self.mlp_free_layers * (self.norms_layer // 2) \
            - (self.dense_layers - self.dense_mlps) * self.dense_mlp_layer \
            - (self.moe_layers - self.moe_mlps) * (routed + self.moe_shared_layer + self.router_layer)

    @property
    def hybrid_correction(self) -> int:
        return self._hybrid_correction(self.moe_routed_layer)

    @property
    def dense_layer(self) -> int:
        return self.attention_layer + self.norms_layer + self.dense_mlp_layer

    @property
    def moe_layer(self) -> int:
        return self.attention_layer + self.norms_layer + self.moe_routed_layer + self.moe_shared_layer + \
            self.router_layer

    @property
    def moe_layer_active(self) -> int:
        return self.attention_layer + self.norms_layer + self.moe_active_routed_layer + self.moe_shared_layer + \
            self.router_layer

    @property
    def non_embedding(self) -> int:
        return self.dense_layers * self.dense_layer + self.moe_layers * self.moe_layer + self.final_norm + \
            self.hybrid_correction

    @property
    def non_embedding_active(self) -> int:
        return self.dense_layers * self.dense_layer + self.moe_layers * self.moe_layer_active + self.final_norm + \
            self._hybrid_correction(self.moe_active_routed_layer)

    @property
    def total(self) -> int:
        return self.non_embedding + self.embedding + self.lm_head

    @property
    def active(self) -> int:
        """Parameters one token touches: active experts only, embedding and LM head included."""
        return self.non_embedding_active + self.embedding + self.lm_head

    @property
    def total_without_input_embedding(self) -> int:
        """All parameters but the input embedding (the LM head kept unless it is the tied embedding itself)."""
        return self.total - self.embedding

    @property
    def active_without_input_embedding(self) -> int:
        """Active parameters but the input embedding: gpt-oss's model card counts active parameters so (5.13B)."""
        return self.active - self.embedding


def param_counts(model: Model) -> ParamCounts:
    h = model.hidden
    attn = attention_params(model)
    if model.moe:
        moe = model.moe
        n_moe = model.moe_layers
        n_dense = model.layers - n_moe
        routed = moe.experts * expert_params(model)
        active_routed = moe.top_k * expert_params(model)
        shared = shared_expert_params(model)
        router = h * moe.experts
    else:
        n_moe, n_dense = 0, model.layers
        routed = active_routed = shared = router = 0
    return ParamCounts(
        attention_layer=attn,
        norms_layer=NORMS_PER_LAYER * h,
        dense_mlp_layer=dense_mlp_params(model),
        moe_routed_layer=routed,
        moe_active_routed_layer=active_routed,
        moe_shared_layer=shared,
        router_layer=router,
        dense_layers=n_dense,
        moe_layers=n_moe,
        embedding=model.vocab * h,
        lm_head=0 if model.tied_embeddings else model.vocab * h,
        final_norm=h,
        ssm_mixer_layer=ssm_mixer_params(model),
        ssm_layers=model.ssm_layers,
        mlp_free_layers=model.ssm.mlp_free_layers if model.ssm else 0,
    )
