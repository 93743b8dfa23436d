"""Mamba-2 / attention hybrids in a Hugging Face config: which layers mix tokens with a Mamba-2 state-space mixer,
and that mixer's shape.

Nemotron-H (NVIDIA, "Nemotron-H: A Family of Accurate and Efficient Hybrid Mamba-Transformer Models",
arXiv:2504.03624, §2.1; ``NemotronHConfig``): ``hybrid_override_pattern`` names each of ``num_hidden_layers``
blocks, ``M`` a Mamba-2 block, ``*`` a self-attention block, ``-`` an MLP block, each behind its own RMSNorm; the
Mamba-2 mixer has ``mamba_num_heads`` heads of ``mamba_head_dim`` channels, ``n_groups`` groups sharing B and C,
a state of ``ssm_state_size``, a convolution of ``conv_kernel`` taps and an SSD chunk of ``chunk_size`` (Dao & Gu
2024, arXiv:2405.21060). The Model's layer is a mixer block and the MLP block that follows it (model.py): the
8B's 52 blocks, 24 Mamba-2, 4 attention and 24 MLP, become 28 layers, 4 of them without an MLP. Nemotron 3
(Megatron-Bridge Nemotron3NanoProvider: ``MEMEM*E...``) has ``E`` blocks, mixture-of-experts MLPs read by
hf_layers.read_moe (``n_routed_experts``, ``num_experts_per_tok``, ``moe_intermediate_size``, one shared expert of
``moe_shared_expert_intermediate_size``): its 52 blocks, 23 Mamba-2, 6 attention and 23 MoE, become 29 layers, 6
Mamba-2 ones without an MLP (spec.model: MoE layers without their experts). An MLP block that
follows no mixer (two MLP blocks in a row, or one first), or an attention block followed by another mixer, has no
such layer and is refused.

Jamba (AI21, "Jamba: A Hybrid Transformer-Mamba Language Model", arXiv:2403.19887, §2; ``JambaConfig``): every
layer a mixer and an MLP; layer i attends when i % ``attn_layer_period`` == ``attn_layer_offset`` (one in eight)
and is a Mamba-1 layer otherwise, of d_inner = ``mamba_expand`` * hidden channels, state ``mamba_d_state``,
convolution ``mamba_d_conv`` and dt rank ``mamba_dt_rank`` ("auto": ceil(hidden / 16), mamba_ssm's default);
the MoE layers (``expert_layer_period`` / ``expert_layer_offset``) are read by hf_layers.read_moe.
"""

from __future__ import annotations

from typing import Any

from .hf_config import Findings, HfConfig
from .hf_layers import EXPERTS

HYBRID_TYPES = frozenset({"nemotron_h", "jamba"})  # the hybrid families read (others are refused by
# hf._check_supported)
PATTERN = "hybrid_override_pattern"
MAMBA, ATTENTION, MLP, MOE = "M", "*", "-", "E"
SSM_KEYS = (("heads", ("mamba_num_heads",)), ("head_dim", ("mamba_head_dim",)), ("state", ("ssm_state_size",)),
            ("groups", ("n_groups",)), ("conv_kernel", ("conv_kernel",)), ("chunk_size", ("chunk_size",)))


def _layers(cfg: HfConfig, blocks: int) -> tuple[list[str], int]:
    """(the mixer of each layer, "mamba" or "full_attention"; how many layers have no MLP)."""
    pattern = cfg.data.get(PATTERN)
    if not isinstance(pattern, str) or not pattern:
        raise cfg.error(f"expected a string of M, *, - and E (one per layer) {PATTERN!r}, got {pattern!r}", PATTERN)
    other = sorted(set(pattern) - {MAMBA, ATTENTION, MLP, MOE})
    if other:
        raise cfg.error(f"{PATTERN!r} has block kinds {', '.join(repr(c) for c in other)}: only M (Mamba-2), "
                        "* (attention), - (MLP) and E (mixture-of-experts MLP) are modelled", PATTERN)
    if len(pattern) != blocks:
        raise cfg.error(f"{PATTERN!r} names {len(pattern)} blocks, num_hidden_layers is {blocks}", PATTERN)
    if MLP in pattern and MOE in pattern:
        raise cfg.error(f"{PATTERN!r} mixes dense (-) and mixture-of-experts (E) MLP blocks: a hybrid is modelled "
                        "with one kind of MLP", PATTERN)
    if MOE in pattern and cfg.present(EXPERTS) is None:
        raise cfg.error(f"{PATTERN!r} has mixture-of-experts (E) blocks: expected an integer {EXPERTS[0]!r} "
                        f"(or {', '.join(repr(k) for k in EXPERTS[1:])})", PATTERN)
    mixers: list[str] = []
    with_mlp: list[bool] = []
    for i, block in enumerate(pattern):
        if block in (MLP, MOE):
            if not mixers or with_mlp[-1]:
                raise cfg.error(f"{PATTERN!r}: the MLP block at {i} follows no mixer block (an MLP-only layer is "
                                "not modelled)", PATTERN)
            with_mlp[-1] = True
        else:
            mixers.append("mamba" if block == MAMBA else "full_attention")
            with_mlp.append(False)
    bare_attention = sum(1 for mixer, mlp in zip(mixers, with_mlp, strict=True) if not mlp and mixer != "mamba")
    if bare_attention:
        raise cfg.error(f"{PATTERN!r} has {bare_attention} attention blocks without an MLP after them: only Mamba-2 "
                        "blocks without an MLP are modelled", PATTERN)
    return mixers, with_mlp.count(False)


JAMBA_SSM = (("state", "mamba_d_state", 16), ("conv_kernel", "mamba_d_conv", 4), ("expand", "mamba_expand", 2))


def _jamba(cfg: HfConfig, found: Findings, origin: dict[str, str]) -> tuple[int, list[str], dict[str, Any]]:
    layers, _ = cfg.need(("num_hidden_layers",))
    hidden, _ = cfg.need(("hidden_size",))
    values: dict[str, int] = {}
    for field, key, default in JAMBA_SSM + (("period", "attn_layer_period", 8), ("offset", "attn_layer_offset", 4)):
        value, _ = cfg.optional((key,), minimum=0 if field == "offset" else 1)
        if value is None:
            value = default
            found.assume(f"{cfg.where(key)} absent: {default}, the jamba default", "ssm", "layer_types")
        values[field] = value
        if field in ("state", "conv_kernel"):
            origin[f"ssm.{field}"] = key
    if values["offset"] >= values["period"]:
        raise cfg.error(f"attn_layer_offset({values['offset']}) must be below attn_layer_period"
                        f"({values['period']})", "attn_layer_offset")
    rank = cfg.data.get("mamba_dt_rank", "auto")
    if rank == "auto":
        rank = -(-hidden // 16)
    elif isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise cfg.error(f"expected a positive integer or 'auto' for 'mamba_dt_rank', got {rank!r}", "mamba_dt_rank")
    inner = values["expand"] * hidden
    ssm: dict[str, Any] = {"version": 1, "heads": inner, "head_dim": 1, "state": values["state"], "groups": 1,
                           "conv_kernel": values["conv_kernel"], "dt_rank": rank}
    for field, key, default in (("conv_bias", "mamba_conv_bias", True), ("proj_bias", "mamba_proj_bias", False)):
        flag = cfg.boolean(key)
        if flag is None:
            flag = default
            found.assume(f"{cfg.where(key)} absent: {'a' if flag else 'no'} bias (the jamba default)", "ssm")
        ssm[field] = flag
    mixers = ["full_attention" if i % values["period"] == values["offset"] else "mamba" for i in range(layers)]
    origin["layer_types"] = "attn_layer_period"
    return layers, mixers, ssm


def read_hybrid(cfg: HfConfig, family: str, found: Findings, origin: dict[str, str]
                ) -> tuple[int, list[str], dict[str, Any]] | None:
    """(layers, each layer's mixer, the ``ssm`` block) of a hybrid family's config; None for other families."""
    if family not in HYBRID_TYPES:
        return None
    if family == "jamba":
        return _jamba(cfg, found, origin)
    blocks, _ = cfg.need(("num_hidden_layers",))
    mixers, mlp_free = _layers(cfg, blocks)
    ssm: dict[str, Any] = {}
    for field, keys in SSM_KEYS:
        value, key = cfg.need(keys)
        ssm[field] = value
        origin[f"ssm.{field}"] = key
    for field, key in (("conv_bias", "use_conv_bias"), ("proj_bias", "mamba_proj_bias")):
        flag = cfg.boolean(key)
        if flag is None:
            flag = field == "conv_bias"  # NemotronHConfig: use_conv_bias True, mamba_proj_bias False
            found.assume(f"{cfg.where(key)} absent: {'a' if flag else 'no'} bias (the {family} default)", "ssm")
        ssm[field] = flag
    if mlp_free:
        ssm["mlp_free_layers"] = mlp_free
    origin["layers"] = origin["layer_types"] = origin["ssm.mlp_free_layers"] = PATTERN
    found.note(f"{PATTERN}: {blocks} blocks read as {len(mixers)} layers (a mixer and the MLP after it), "
               f"{mixers.count('mamba')} Mamba-2, {len(mixers) - mixers.count('mamba')} attention, "
               f"{mlp_free} without an MLP")
    return len(mixers), mixers, ssm
