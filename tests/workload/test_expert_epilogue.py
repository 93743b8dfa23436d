"""An eager expert epilogue (spec.training.expert_epilogue): gpt-oss's expert biases and GLU clamp applied in
separate passes over the routed tokens' activations, counted exactly and only where the model has them."""

from __future__ import annotations

import numpy as np
import pytest

from supercluster.spec import Model
from supercluster.workload.operators import ACT_BYTES, layer_work

GPT_OSS = {"name": "oss", "layers": 4, "hidden": 2880, "ffn_hidden": 2880, "heads": 64, "kv_heads": 8,
           "head_dim": 64, "vocab": 201088, "seq_len": 4096, "activation": "swiglu",
           "moe": {"experts": 128, "top_k": 4, "moe_ffn_hidden": 2880}}


def _work(model: Model, kind: str = "moe", eager: bool = True) -> object:
    one = np.array([1.0])
    return layer_work(model, kind, seq_len=4096, micro_batch=one * 2, tp=one, cp=one, sp=np.array([False]),
                      ep=one * 8, etp=one, precision="bf16", eager_epilogue=eager)  # type: ignore[arg-type]


@pytest.mark.parametrize("extra", [{"glu_limit": 7.0}, {"linear_bias": True}, {"glu_limit": 7.0, "linear_bias": True}])
def test_two_passes_over_fc1_and_three_over_fc2_per_routed_token(extra: dict) -> None:
    m = Model.model_validate({**GPT_OSS, **extra})
    eager, fused = _work(m), _work(m, eager=False)
    routed = 2 * 4096 * 4  # every token of the micro-batch routed to top-k experts, spread over the ep ranks
    expected = routed * (2 * 2 * 2 * 2880 + 3 * 2 * 2880) * ACT_BYTES
    np.testing.assert_allclose(eager.elementwise_bytes - fused.elementwise_bytes, expected)  # type: ignore[attr-defined]
    assert eager.parts["expert_epilogue"][0] == pytest.approx(expected)  # type: ignore[attr-defined]
    assert [g.flops for g in eager.gemms] == [g.flops for g in fused.gemms]  # type: ignore[attr-defined]


def test_experts_without_biases_or_clamp_and_dense_layers_are_unchanged() -> None:
    plain = Model.model_validate(GPT_OSS)
    assert not plain.norm_and_bias[1] and plain.glu_limit is None
    np.testing.assert_array_equal(_work(plain).elementwise_bytes, _work(plain, eager=False).elementwise_bytes)  # type: ignore[attr-defined]
    clamped = Model.model_validate({**GPT_OSS, "glu_limit": 7.0})
    np.testing.assert_array_equal(_work(clamped, "dense").elementwise_bytes,  # type: ignore[attr-defined]
                                  _work(clamped, "dense", eager=False).elementwise_bytes)  # type: ignore[attr-defined]
