"""The model report: layers as counted, parameters with and without the input embedding, the N of MFU, published
figures and assumptions, for catalog models and config.json models alike."""

from __future__ import annotations

from pathlib import Path

import pytest

from supercluster.spec.catalog import entry
from supercluster.spec.hf import model_from_hf_config
from supercluster.spec.model import Model
from supercluster.workload import ModelReport, model_flops_per_token, model_report, param_counts
from supercluster.workload.flops import attention_flops_per_token, forward_flops_per_token

HF = Path(__file__).resolve().parent.parent / "data" / "hf"


def catalog_model(name: str) -> Model:
    return Model.model_validate(entry("models", name))


def hf_model(name: str) -> Model:
    return Model.model_validate(model_from_hf_config(HF / name / "config.json"))


@pytest.mark.parametrize("model", [catalog_model("deepseek-v3"), catalog_model("llama3-8b"),
                                   hf_model("gpt-oss-120b"), hf_model("gemma-3-1b-pt")],
                         ids=["deepseek-v3", "llama3-8b", "gpt-oss-120b", "gemma-3-1b-pt"])
def test_mfu_params_are_the_n_of_the_model_flops(model: Model) -> None:
    """The N the report names for MFU is the N of model_flops_per_token: 6N plus the attention term."""
    r = model_report(model)
    seq = 4096
    attention = 3.0 * attention_flops_per_token(model, seq)  # windowed layers over their window
    assert model_flops_per_token(model, seq) == pytest.approx(6.0 * r.mfu_params + attention, rel=1e-12)


def test_counts_with_and_without_the_input_embedding() -> None:
    """Totals and actives differ from their 'without the input embedding' figures by exactly V*h; the N of MFU also
    leaves out the LM head."""
    model = catalog_model("kimi-k2")
    r, pc = model_report(model), param_counts(model)
    v_h = model.vocab * model.hidden
    assert (r.params - r.params_without_input_embedding, r.active_params - r.active_params_without_input_embedding) \
        == (v_h, v_h)
    assert r.active_params_without_input_embedding - r.mfu_params == pc.lm_head == v_h
    assert (r.params, r.active_params) == (pc.total, pc.active)


def test_deepseek_layers_and_published_figures() -> None:
    """DeepSeek-V3 from the catalog: 3 dense layers first, 58 MoE with one shared expert, MLA, its published totals
    and the assumption its entry states."""
    r = model_report(catalog_model("deepseek-v3"))
    assert isinstance(r, ModelReport)
    assert (r.family, r.layers, r.dense_layers, r.moe_layers) == ("catalog", 61, 3, 58)
    assert r.layer_pattern == ("first 3 dense, then 58 MoE (256 routed experts, 8 active, + 1 shared expert; expert "
                               "width 2048, dense width 18432)")
    assert r.attention == "MLA: 128 heads, KV latent 512"
    assert (r.published_params, r.published_active_params) == (671e9, 37e9)
    assert r.assumptions == ["the multi-token-prediction module (one more layer, trained with the model) is not "
                             "modelled"]


def test_a_dense_catalog_model_has_no_assumption() -> None:
    """Llama 3 8B: 32 dense layers, GQA, nothing assumed; active = total."""
    r = model_report(catalog_model("llama3-8b"))
    assert (r.layer_pattern, r.attention) == ("32 dense layers", "GQA: 32 heads, 8 KV heads, head dim 128")
    assert r.assumptions == [] and r.active_params == r.params and r.windowed_layers == 0
    assert r.sliding_window is None


def test_a_config_json_model_reports_its_family_windows_and_assumptions() -> None:
    """Gemma 3 27B from its multimodal config: family gemma3, 52 of 62 layers windowed, every assumption listed."""
    model = hf_model("gemma-3-27b-pt")
    r = model_report(model)
    assert (r.family, r.windowed_layers, r.sliding_window) == ("gemma3", 52, 1024)
    assert r.attention.endswith("52 of 62 layers windowed (1,024 tokens), 10 full")
    assert r.assumptions == model.assumptions and len(r.assumptions) == 6
    assert (r.published_params, r.published_active_params) == (None, None)


def test_an_inline_model_is_user_input() -> None:
    """A model written in a scenario (its own source) is reported as user input."""
    body = {**entry("models", "llama3-8b"), "name": "mine", "source": "our notes"}
    assert model_report(Model.model_validate(body)).family == "user input"


def test_llama4_interleaving_is_counted_and_said() -> None:
    """Llama 4 Maverick: 24 dense + 24 MoE layers with a shared expert, alternating (moe.interleave_step 2): the
    layer pattern says so, and it is no longer an assumption."""
    r = model_report(catalog_model("llama4-maverick"))
    assert (r.dense_layers, r.moe_layers) == (24, 24)
    assert "+ 1 shared expert" in r.layer_pattern and "every 2nd layer MoE (24 MoE, 24 dense)" in r.layer_pattern
    assert not any("every 2nd layer is MoE" in a for a in r.assumptions)


def test_a_forward_pass_is_a_third_of_training_s_model_flops() -> None:
    """forward_flops_per_token (an evaluation pass) is 2N plus the attention term: a third of the training count."""
    model = catalog_model("llama2-70b")
    for seq in (2048, 8192):
        assert 3.0 * forward_flops_per_token(model, seq) == pytest.approx(model_flops_per_token(model, seq), rel=1e-12)
