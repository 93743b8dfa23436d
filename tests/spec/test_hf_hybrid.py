"""Mamba-2 / attention hybrids read from config.json (Nemotron-H): the layer pattern, the SSM shape, the parameter
count against the closed form and the published totals, and bad patterns refused with one located line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from supercluster.errors import FileFormatError
from supercluster.spec import Model
from supercluster.spec.hf import model_from_hf_config
from supercluster.workload.params import param_counts

DATA = Path(__file__).resolve().parent.parent / "data" / "hf"
NEMOTRON_8B = DATA / "Nemotron-H-8B-Base-8K" / "config.json"


def raw() -> dict[str, Any]:
    return json.loads(NEMOTRON_8B.read_text(encoding="utf-8"))


def write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "h" / "config.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def mamba2_mixer(h: int, heads: int, head_dim: int, state: int, groups: int, conv: int) -> int:
    """Mamba-2 mixer parameters written out independently (arXiv:2405.21060 Figure 6): in_proj to z, x, B, C, dt;
    conv1d weight and bias over x, B, C; A_log, D, dt_bias; gated RMSNorm; out_proj."""
    inner = heads * head_dim
    xbc = inner + 2 * groups * state
    return h * (inner + xbc + heads) + xbc * conv + xbc + 3 * heads + inner + inner * h


def test_nemotron_h_8b_layers_and_ssm_shape() -> None:
    """Nemotron-H-8B's 52 blocks read as 28 layers (24 Mamba-2, 4 attention), 4 of them without an MLP."""
    m = Model.model_validate(model_from_hf_config(NEMOTRON_8B))
    assert (m.layers, m.ssm_layers, m.attention_layers) == (28, 24, 4)
    assert m.ssm is not None and m.ssm.mlp_free_layers == 4
    assert (m.ssm.heads, m.ssm.head_dim, m.ssm.state, m.ssm.groups, m.ssm.conv_kernel, m.ssm.chunk_size) == (
        128, 64, 128, 8, 4, 128)
    assert m.activation == "relu" and not m.tied_embeddings and m.family == "nemotron_h"
    assert not m.assumptions


def test_nemotron_h_8b_parameters_match_the_closed_form_and_the_published_8b() -> None:
    """Parameters: the blocks written out by hand (24 Mamba-2 mixers, 4 GQA attentions, 24 ReLU^2 MLPs, 52 block
    norms and the final one, untied embeddings) to the parameter; the model card publishes the count as '8B'
    (rounded), which the total meets within 1.5%."""
    m = Model.model_validate(model_from_hf_config(NEMOTRON_8B))
    h = 4096
    attention = h * 32 * 128 * 2 + 2 * h * 8 * 128
    expected = (24 * mamba2_mixer(h, 128, 64, 128, 8, 4) + 4 * attention + 24 * 2 * h * 21504 + 53 * h
                + 2 * 131072 * h)
    pc = param_counts(m)
    assert pc.total == expected == 8_100_852_736
    assert abs(pc.total / 8e9 - 1) < 0.015
    assert pc.non_embedding_active == pc.total - 2 * 131072 * h  # MFU's N has the SSM layers


def test_nemotron_h_56b_shape_within_1pct_of_published(tmp_path: Path) -> None:
    """Nemotron-H-56B (hidden 8192, 118 blocks: 54 Mamba-2, 10 attention, 54 MLP, as NVIDIA's ADLR page states;
    Mamba-2 256 heads x 64, state 256, 8 groups; FFN 32768; 64 heads, 8 KV) counts within 1% of its published 56B.
    The block order is written here with those counts (the count depends on the counts alone)."""
    pattern = ("M-" * 4 + "M*-") * 10 + "M-" * 4
    assert (pattern.count("M"), pattern.count("*"), pattern.count("-"), len(pattern)) == (54, 10, 54, 118)
    data = {**raw(), "hidden_size": 8192, "num_hidden_layers": 118, "hybrid_override_pattern": pattern,
            "num_attention_heads": 64, "num_key_value_heads": 8, "intermediate_size": 32768, "mamba_num_heads": 256,
            "ssm_state_size": 256}
    m = Model.model_validate(model_from_hf_config(write(tmp_path, data)))
    assert (m.layers, m.ssm_layers) == (64, 54)
    assert abs(param_counts(m).total / 56e9 - 1) < 0.01


NANO_PATTERN = "MEMEM*EMEMEM*EMEMEM*EMEMEM*EMEMEM*EMEMEMEM*EMEMEMEME"  # Nemotron3NanoProvider @v0.4.2


def nano() -> dict[str, Any]:
    """A Nemotron 3 Nano 30B-A3B shaped config: the 8B's keys with the dimensions Megatron-Bridge's
    Nemotron3NanoProvider gives the model (src/megatron/bridge/models/nemotronh/nemotron_h_provider.py @v0.4.2)."""
    return {**raw(), "num_hidden_layers": 52, "hybrid_override_pattern": NANO_PATTERN, "hidden_size": 2688,
            "num_attention_heads": 32, "num_key_value_heads": 2, "head_dim": 128, "mamba_num_heads": 64,
            "mamba_head_dim": 64, "ssm_state_size": 128, "n_groups": 8, "intermediate_size": 1856,
            "n_routed_experts": 128, "num_experts_per_tok": 6, "moe_intermediate_size": 1856,
            "moe_shared_expert_intermediate_size": 3712, "vocab_size": 131072}


def test_nemotron_3_nano_reads_its_moe_blocks(tmp_path: Path) -> None:
    """Nemotron 3 Nano's 52 blocks (23 Mamba-2, 6 attention, 23 mixture-of-experts E) are 29 layers, 6 of them
    Mamba-2 without an MLP; every MLP is MoE (128 experts, top 6, width 1856, one shared expert of 3712). The count
    is the blocks written out by hand, and NVIDIA's figures: 31.6B total and 3.2B active but the input embedding
    (as NVIDIA's release of Nemotron 3 Nano gives them) within 1%, and the Hugging Face model card's 3.5B active
    (NVIDIA-Nemotron-3-Nano-30B-A3B-BF16: "3.5B active parameters"; embeddings included) within 3%."""
    assert (NANO_PATTERN.count("M"), NANO_PATTERN.count("*"), NANO_PATTERN.count("E")) == (23, 6, 23)
    m = Model.model_validate(model_from_hf_config(write(tmp_path, nano())))
    assert (m.layers, m.ssm_layers, m.attention_layers) == (29, 23, 6)
    assert m.ssm is not None and m.ssm.mlp_free_layers == 6
    assert m.moe is not None and (m.moe.experts, m.moe.top_k, m.moe.moe_ffn_hidden, m.moe.shared_experts,
                                  m.moe.shared_ffn_hidden, m.moe_layers) == (128, 6, 1856, 1, 3712, 29)
    pc = param_counts(m)
    assert (pc.moe_mlps, pc.dense_mlps) == (23, 0)
    h, heads, kv, d = 2688, 32, 2, 128
    attention = h * heads * d * 2 + h * kv * d * 2
    expert, shared = 2 * h * 1856, 2 * h * 3712  # squared ReLU: up and down projections
    mixers = 23 * mamba2_mixer(h, 64, 64, 128, 8, 4) + 6 * attention
    mlps = 23 * (128 * expert + shared + h * 128)
    norms = 29 * h + 23 * h  # a norm before every block
    assert pc.total == mixers + mlps + norms + h + 2 * 131072 * h
    assert pc.active == mixers + 23 * (6 * expert + shared + h * 128) + norms + h + 2 * 131072 * h
    assert abs(pc.total / 31.6e9 - 1) < 0.01
    assert abs(pc.active_without_input_embedding / 3.2e9 - 1) < 0.01
    assert abs(pc.active / 3.5e9 - 1) < 0.03


@pytest.mark.parametrize(("change", "needle"), [
    ({"hybrid_override_pattern": "M-M-X*" + "M-" * 23}, "'X'"),
    ({"hybrid_override_pattern": "M-M-ME" + "M-" * 23}, "mixes dense (-) and mixture-of-experts (E)"),
    ({"hybrid_override_pattern": "MEMEM*" + "ME" * 23}, "'n_routed_experts'"),
    ({"hybrid_override_pattern": "M--M*-" * 8 + "M-M-"}, "follows no mixer"),
    ({"hybrid_override_pattern": "M-M*-"}, "names 5 blocks"),
    ({"hybrid_override_pattern": 7}, "expected a string"),
])
def test_a_bad_hybrid_pattern_is_one_located_line(tmp_path: Path, change: dict[str, Any], needle: str) -> None:
    """A pattern with an unknown block, an MLP after no mixer, the wrong length or the wrong type is refused, naming
    the file and hybrid_override_pattern."""
    path = write(tmp_path, {**raw(), **change})
    with pytest.raises(FileFormatError) as info:
        model_from_hf_config(path)
    assert (info.value.file, info.value.field) == (str(path), "hybrid_override_pattern")
    assert needle in info.value.message


def test_a_missing_ssm_key_is_named(tmp_path: Path) -> None:
    """A Nemotron-H config without its SSM state size is refused naming ssm_state_size."""
    data = {k: v for k, v in raw().items() if k != "ssm_state_size"}
    with pytest.raises(FileFormatError) as info:
        model_from_hf_config(write(tmp_path, data))
    assert info.value.field == "ssm_state_size"


def test_model_needs_an_ssm_block_for_mamba_layers() -> None:
    """A Model whose layer_types marks mamba layers without an ssm block (or the reverse) is invalid."""
    base = Model.model_validate(model_from_hf_config(NEMOTRON_8B)).model_dump()
    with pytest.raises(ValueError, match="no 'ssm' block"):
        Model.model_validate({**base, "ssm": None})
    with pytest.raises(ValueError, match="needs layers marked 'mamba'"):
        Model.model_validate({**base, "layer_types": None})


def test_absent_bias_keys_are_listed_assumptions(tmp_path: Path) -> None:
    """Without use_conv_bias / mamba_proj_bias the NemotronHConfig defaults (a conv bias, no projection bias) are
    modelled and each listed as an assumption; the count is unchanged."""
    data = {k: v for k, v in raw().items() if k not in ("use_conv_bias", "mamba_proj_bias")}
    m = Model.model_validate(model_from_hf_config(write(tmp_path, data)))
    assert len(m.assumptions) == 2 and all("bias" in a for a in m.assumptions)
    assert param_counts(m).total == 8_100_852_736


# --- Jamba (Mamba-1 layers) ----------------------------------------------------------------------------------

JAMBA = DATA / "Jamba-v0.1" / "config.json"


def mamba1_mixer(h: int, inner: int, state: int, conv: int, rank: int) -> int:
    """Mamba-1 mixer parameters written out (arXiv:2312.00752; mamba_ssm's Mamba): in_proj, conv1d with its bias,
    x_proj, dt_proj with its bias, A_log, D, out_proj."""
    return h * 2 * inner + inner * conv + inner + inner * (rank + 2 * state) + rank * inner + inner \
        + inner * state + inner + inner * h


def test_jamba_layers_and_counts_within_1pct_of_published() -> None:
    """Jamba v0.1: 32 layers, attention at i % 8 == 4 (4 layers), Mamba-1 elsewhere (28), MoE every other layer
    (16 experts, top 2: the odd layers, moe.interleave_step 2); 52B total and 12B active as AI21 publishes
    (arXiv:2403.19887 §3), within 1%; the count is the blocks written out by hand."""
    m = Model.model_validate(model_from_hf_config(JAMBA))
    assert (m.layers, m.ssm_layers, m.attention_layers) == (32, 28, 4)
    assert [i for i, t in enumerate(m.layer_types or []) if t != "mamba"] == [4, 12, 20, 28]
    assert m.ssm is not None and (m.ssm.version, m.ssm.heads, m.ssm.dt_rank) == (1, 8192, 256)
    assert m.moe is not None and (m.moe.experts, m.moe.top_k, m.moe.dense_layers, m.moe.interleave_step) == (16, 2, 0, 2)
    assert [i for i, f in enumerate(m.moe_layer_flags) if f] == list(range(1, 32, 2))
    h, mlp = 4096, 3 * 4096 * 14336
    attention = 2 * h * 4096 + 2 * h * 1024
    layers_common = 28 * mamba1_mixer(h, 8192, 16, 4, 256) + 4 * attention + 32 * 2 * h + 16 * mlp
    pc = param_counts(m)
    assert pc.total == layers_common + 16 * (16 * mlp + h * 16) + h + 2 * 65536 * h
    assert pc.active == layers_common + 16 * (2 * mlp + h * 16) + h + 2 * 65536 * h
    assert abs(pc.total / 52e9 - 1) < 0.01 and abs(pc.active / 12e9 - 1) < 0.01
    assert m.assumptions == []


def test_jamba_auto_dt_rank_and_bad_offset(tmp_path: Path) -> None:
    """mamba_dt_rank 'auto' is ceil(hidden/16); an attention offset at or past its period is one located line."""
    data = json.loads(JAMBA.read_text(encoding="utf-8"))
    m = Model.model_validate(model_from_hf_config(write(tmp_path, {**data, "mamba_dt_rank": "auto"})))
    assert m.ssm is not None and m.ssm.dt_rank == 256
    path = write(tmp_path, {**data, "attn_layer_offset": 8})
    with pytest.raises(FileFormatError) as info:
        model_from_hf_config(path)
    assert (info.value.file, info.value.field) == (str(path), "attn_layer_offset")


@pytest.mark.parametrize(("fields", "needle"), [
    ({"version": 1, "heads": 64, "head_dim": 2, "state": 16, "dt_rank": 8}, "head_dim 1"),
    ({"version": 1, "heads": 64, "head_dim": 1, "state": 16}, "dt_rank"),
    ({"heads": 64, "head_dim": 64, "state": 128, "dt_rank": 8}, "Mamba-1 field"),
    ({"heads": 64, "head_dim": 64, "state": 128, "groups": 3}, "must divide heads"),
])
def test_ssm_shape_rules(fields: dict[str, Any], needle: str) -> None:
    """An SSM block that is neither a Mamba-2 nor a Mamba-1 shape is refused, naming the rule."""
    from supercluster.spec import SSM
    with pytest.raises(ValueError, match=needle):
        SSM.model_validate(fields)
