"""Memory of a Mamba-2 hybrid: its weights are its parameter count, a Mamba-2 layer keeps what the fused SSD
kernel saves for its backward (the closed form), and the stage adds its attention, Mamba-2 and MLP-free layers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from supercluster.spec import Model
from supercluster.spec.hf import model_from_hf_config
from supercluster.workload.memory import layer_activation_bytes, memory_per_gpu, stage_params_at
from supercluster.workload.params import param_counts

NEMOTRON = Path(__file__).resolve().parent.parent / "data" / "hf" / "Nemotron-H-8B-Base-8K" / "config.json"


def A(*x: float) -> np.ndarray:
    return np.array(x, dtype=np.float64)


def nemotron() -> Model:
    return Model.model_validate(model_from_hf_config(NEMOTRON))


def test_one_stage_holds_every_parameter() -> None:
    """Without a pipeline or tensor parallelism the stage's parameters are the model's total, Mamba-2 mixers and
    MLP-free layers counted."""
    m = nemotron()
    non_expert, expert, _ = stage_params_at(m, "first", A(1), A(1), A(1), A(1))
    assert float(non_expert[0]) == pytest.approx(param_counts(m).total, rel=1e-12) and expert[0] == 0


def activations(m: Model, seq: int, mamba: bool, mlp_block: bool = True, flash: bool = True) -> float:
    return float(layer_activation_bytes(m, seq_len=seq, micro_batch=A(1), tp=A(1), cp=A(1), sp=np.array([False]),
                                        ep=A(1), etp=A(1), recompute=np.array([0]), flash_attention=flash,
                                        moe_layer=False, mamba=mamba, mlp_block=mlp_block)[0])


def test_mamba_layer_activations_are_the_closed_form() -> None:
    """A Mamba-2 layer, 16-bit, tp 1: two norms' inputs and outputs (4 x 2sh), z,x,B,C,dt (2 x 18560 s), the scan's
    output and the output projection's input (2 x 2 x 8192 s), fp32 rstd per group (4 x 8 s), the ReLU^2 MLP's
    up output and down input (2 x 2 x 21504 s); without an MLP, half the norms and no MLP."""
    m, s = nemotron(), 8192
    h = 4096
    mixer = 2 * 18560 * s + 4 * 8192 * s + 4 * 8 * s
    assert activations(m, s, True) == 8 * s * h + mixer + 4 * 21504 * s
    assert activations(m, s, True, mlp_block=False) == 4 * s * h + mixer


def test_stage_activations_add_the_layer_kinds() -> None:
    """pp 1, no recompute: the stored activations are 4 attention layers, 20 Mamba-2 layers and 4 without an MLP."""
    m, s = nemotron(), 8192
    mem = memory_per_gpu(m, seq_len=s, global_batch=64, flash_attention=True, precision="bf16", tp=A(1), pp=A(1), dp=A(64),
                         cp=A(1), ep=A(1), etp=A(1), micro_batch=A(1), virtual_stages=A(1),
                         recompute=np.array([0]), zero_stage=np.array([1]), sp=np.array([False]))
    expected = 4 * activations(m, s, False) + 20 * activations(m, s, True) + 4 * activations(m, s, True, False)
    assert float(mem.activations_bytes[0]) == pytest.approx(expected, rel=1e-12)


def test_unfused_hybrid_keeps_far_fewer_scores_at_long_sequence() -> None:
    """Without flash attention at 32k tokens, a Mamba-2 layer keeps no s x s scores: far less than an attention
    layer."""
    m = nemotron()
    assert activations(m, 32768, True, flash=False) < activations(m, 32768, False, flash=False) / 10
