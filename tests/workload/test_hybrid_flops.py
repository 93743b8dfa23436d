"""A Mamba-2 hybrid's FLOPs: the SSD scan's closed form, linear in the sequence, so a hybrid at long sequences
costs less than the same depth all attention; models without state-space layers unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

from supercluster.spec import Model
from supercluster.spec.hf import model_from_hf_config
from supercluster.workload.flops import (
    attention_flops_per_token_layer,
    model_flops_per_token,
    ssd_scan_flops_per_token_layer,
)
from supercluster.workload.params import param_counts

DATA = Path(__file__).resolve().parent.parent / "data" / "hf"


def nemotron() -> Model:
    return Model.model_validate(model_from_hf_config(DATA / "Nemotron-H-8B-Base-8K" / "config.json"))


def test_ssd_scan_flops_match_the_closed_form() -> None:
    """Per token and layer, forward: 2Q(GN + HP) + 4HPN + 2HPN/Q (arXiv:2405.21060 §6), Q the chunk."""
    m = nemotron()
    Q, G, N, HP = 128, 8, 128, 128 * 64
    assert ssd_scan_flops_per_token_layer(m, 8192) == 2 * Q * (G * N + HP) + 4 * HP * N + 2 * HP * N / Q
    assert ssd_scan_flops_per_token_layer(m, 64) == 2 * 64 * (G * N + HP) + 4 * HP * N + 2 * HP * N / 64


@pytest.mark.parametrize("seq", [8192, 65536])
def test_hybrid_model_flops_are_the_closed_form(seq: int) -> None:
    """6N + 3 x (4 attention layers over s keys + 24 Mamba-2 scans)."""
    m = nemotron()
    n = param_counts(m).non_embedding_active
    expected = 6 * n + 3 * (4 * attention_flops_per_token_layer(m, seq) + 24 * ssd_scan_flops_per_token_layer(m, seq))
    assert model_flops_per_token(m, seq) == pytest.approx(expected, rel=1e-12)


def test_hybrid_costs_less_than_all_attention_at_long_sequence() -> None:
    """At 64k tokens the hybrid's sequence term is far below the same depth all attention, whose term grows as s."""
    m = nemotron()
    data = m.model_dump()
    all_attention = Model.model_validate({**data, "layer_types": None, "ssm": None})
    seq = 65536
    hybrid_seq = model_flops_per_token(m, seq) - 6 * param_counts(m).non_embedding_active
    dense_seq = model_flops_per_token(all_attention, seq) - 6 * param_counts(all_attention).non_embedding_active
    assert hybrid_seq < dense_seq / 5
    # the scan is linear: doubling s leaves its per-token cost unchanged, attention's doubles
    assert ssd_scan_flops_per_token_layer(m, 2 * seq) == ssd_scan_flops_per_token_layer(m, seq)


def test_mamba1_selective_scan_flops() -> None:
    """Jamba's Mamba-1 scan: 9*d_inner*N + d_inner a token and layer (state-spaces/mamba issue #110), no chunk."""
    m = Model.model_validate(model_from_hf_config(DATA / "Jamba-v0.1" / "config.json"))
    assert ssd_scan_flops_per_token_layer(m, 4096) == ssd_scan_flops_per_token_layer(m, 262144) == \
        9 * 8192 * 16 + 8192
