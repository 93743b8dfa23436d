"""Memory per GPU: Korthikanti et al. 2022 activation closed forms, ZeRO sharding, pipeline in-flight micro-batches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from supercluster.perf.candidates import Candidates
from supercluster.perf.step import candidate_memory
from supercluster.spec import load_scenario
from supercluster.spec.catalog import entry
from supercluster.spec.model import Model
from supercluster.spec.training import SELECTIVE_DEFAULT, Training
from supercluster.workload import memory_per_gpu, param_counts
from supercluster.workload.flops import op_recompute_share
from supercluster.workload.memory import (
    layer_activation_bytes,
    layers_per_stage,
    pipeline_end_layers,
    stage_layer_counts,
    stage_params,
)

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
A = np.asarray


def gpt_style(**changes: Any) -> Model:
    """Korthikanti et al.'s setting: GeLU MLP of 4h, full MHA, dropout, learned positions (no rotary)."""
    body: dict[str, Any] = dict(name="gpt-style", layers=24, hidden=2048, ffn_hidden=4 * 2048, heads=16, vocab=51200,
                                seq_len=2048, activation="gelu", tied_embeddings=False, attention="mha",
                                position_embedding="learned", dropout=0.1)
    body.update(changes)
    return Model.model_validate(body)


def catalog_model(name: str) -> Model:
    return Model.model_validate(entry("models", name))


def layer_bytes(model: Model, *, s: int, b: int, t: int, sp: bool, recompute: int, cp: int = 1,
                flash_attention: bool = False, precision: str = "bf16") -> float:
    out = layer_activation_bytes(model, seq_len=s, micro_batch=A([b]), tp=A([t]), cp=A([cp]), sp=A([sp]),
                                 ep=A([1]), etp=A([1]), recompute=A([recompute]), flash_attention=flash_attention,
                                 moe_layer=False, precision=precision)
    assert out.shape == (1,)
    return float(out[0])




# Korthikanti et al. 2022 (arXiv:2205.05198) Table 2, per layer, in bytes; a heads, s seq, b micro-batch, h hidden.
def no_parallelism(s: int, b: int, h: int, a: int, t: int) -> float:
    return s * b * h * (34 + 5 * a * s / h)


def tensor_parallel(s: int, b: int, h: int, a: int, t: int) -> float:
    return s * b * h * (10 + 24 / t + 5 * a * s / (h * t))


def tensor_sequence_parallel(s: int, b: int, h: int, a: int, t: int) -> float:
    return s * b * h / t * (34 + 5 * a * s / h)


def tp_sp_selective(s: int, b: int, h: int, a: int, t: int) -> float:
    return s * b * h / t * 34


def full_recompute(s: int, b: int, h: int, a: int, t: int) -> float:
    return 2 * s * b * h


TABLE_2 = [
    pytest.param(no_parallelism, 1, False, 0, id="no-parallelism"),
    pytest.param(tensor_parallel, 8, False, 0, id="tp"),
    pytest.param(tensor_sequence_parallel, 8, True, 0, id="tp+sp"),
    pytest.param(tp_sp_selective, 8, True, 1, id="tp+sp+selective"),
    pytest.param(full_recompute, 8, False, 2, id="full-recompute"),
    pytest.param(full_recompute, 1, False, 2, id="full-recompute-t1"),
]
SHAPES = [(2048, 1, 2048, 16), (2048, 4, 12288, 96), (4096, 2, 4096, 32)]  # (s, b, h, a)


@pytest.mark.parametrize(("formula", "t", "sp", "recompute"), TABLE_2)
@pytest.mark.parametrize(("s", "b", "h", "a"), SHAPES)
def test_korthikanti_table_2(formula: Any, t: int, sp: bool, recompute: int, s: int, b: int, h: int,
                             a: int) -> None:
    """Activation bytes per layer equal the closed form of Korthikanti et al. 2022 Table 2 exactly."""
    model = gpt_style(hidden=h, ffn_hidden=4 * h, heads=a)
    got = layer_bytes(model, s=s, b=b, t=t, sp=sp, recompute=recompute)
    assert got == pytest.approx(formula(s, b, h, a, t), rel=1e-12)


@pytest.mark.parametrize("t", [1, 2, 8])
@pytest.mark.parametrize("sp", [False, True])
def test_activations_without_dropout(t: int, sp: bool) -> None:
    """Without dropout a layer stores 8sbh/(t if SP) + (24sbh + 2as^2b)/t: sbh(32 + 2as/h) at t=1."""
    s, b, h, a = 2048, 2, 2048, 16
    model = gpt_style(dropout=0.0)
    sbh = s * b * h
    replicated = 8 * sbh / (t if sp else 1)
    expected = replicated + (24 * sbh + 2 * a * s * s * b) / t
    assert layer_bytes(model, s=s, b=b, t=t, sp=sp, recompute=0) == pytest.approx(expected, rel=1e-12)


def test_full_recompute_with_sequence_parallel() -> None:
    """Full recompute stores only the layer input, 2sbh, sharded by t with sequence parallelism."""
    s, b, h, t = 2048, 2, 2048, 4
    got = layer_bytes(gpt_style(), s=s, b=b, t=t, sp=True, recompute=2)
    assert got == pytest.approx(2 * s * b * h / t, rel=1e-12)


@pytest.mark.parametrize("t", [1, 4])
def test_flash_attention_drops_the_score_matrix(t: int) -> None:
    """Flash attention without recompute stores what selective recompute does: no s x s term."""
    model = gpt_style()
    kw: dict[str, Any] = dict(s=2048, b=2, t=t, sp=t > 1)
    flash = layer_bytes(model, recompute=0, flash_attention=True, **kw)
    selective = layer_bytes(model, recompute=1, flash_attention=False, **kw)
    plain = layer_bytes(model, recompute=0, flash_attention=False, **kw)
    assert flash == selective
    assert plain - flash == pytest.approx(5 * 16 * 2048**2 * 2 / t, rel=1e-12)  # 5*a*s^2*b/t


@pytest.mark.parametrize("cp", [2, 4])
def test_context_parallel_divides_activations(cp: int) -> None:
    """Context parallelism divides a layer's stored activations (flash attention) by cp."""
    model = catalog_model("llama3-8b")
    kw: dict[str, Any] = dict(s=8192, b=1, t=2, sp=True, recompute=0, flash_attention=True)
    assert layer_bytes(model, cp=cp, **kw) * cp == pytest.approx(layer_bytes(model, cp=1, **kw), rel=1e-12)


@pytest.mark.parametrize(("t", "sp"), [(1, False), (4, False), (4, True)])
def test_fp8_stores_less(t: int, sp: bool) -> None:
    """An fp8 run stores the four GEMM inputs at 1 byte: (2/shard + 5/t)*sbh fewer bytes for a GeLU f=4h layer."""
    s, b, h = 2048, 2, 2048
    model = gpt_style()
    kw: dict[str, Any] = dict(s=s, b=b, t=t, sp=sp, recompute=0, flash_attention=True)
    bf16, fp8 = layer_bytes(model, precision="bf16", **kw), layer_bytes(model, precision="fp8", **kw)
    shard = t if sp else 1
    assert fp8 < bf16
    assert bf16 - fp8 == pytest.approx(s * b * h * (2 / shard + 5 / t), rel=1e-12)


@pytest.mark.parametrize(("t", "sp"), [(1, False), (4, True)])
def test_fp4_stores_less_than_fp8(t: int, sp: bool) -> None:
    """An NVFP4 run keeps the same quantized GEMM inputs at 0.5 + 1/16 bytes: (1 - 0.5625) x the elements an fp8
    run keeps at 1 byte fewer than bf16."""
    model = gpt_style()
    kw: dict[str, Any] = dict(s=2048, b=2, t=t, sp=sp, recompute=0, flash_attention=True)
    bf16, fp8, fp4 = (layer_bytes(model, precision=p, **kw) for p in ("bf16", "fp8", "fp4"))
    assert fp4 < fp8 < bf16
    assert fp8 - fp4 == pytest.approx((1.0 - 0.5625) * (bf16 - fp8), rel=1e-12)


def memory(model: Model, *, global_batch: int = 1024, precision: str = "bf16", **degrees: Any) -> Any:
    cols: dict[str, Any] = dict(tp=1, pp=1, dp=1, cp=1, ep=1, etp=1, micro_batch=1, virtual_stages=1, recompute=0,
                                zero_stage=0, sp=False)
    cols.update(degrees)
    size = max(np.size(v) for v in cols.values())
    arrays = {k: np.broadcast_to(np.asarray(v), (size,)) for k, v in cols.items()}
    return memory_per_gpu(model, seq_len=model.seq_len, global_batch=global_batch, grad_accum_fp32=True,
                          flash_attention=True, precision=precision, **arrays)


def test_zero_stages_shard_states_dense() -> None:
    """ZeRO-1 divides the optimizer, ZeRO-2 also the gradients, ZeRO-3 also the weights, by dp*cp."""
    model = catalog_model("llama3-8b")
    dp, cp = 8, 2
    m = memory(model, tp=2, dp=dp, cp=cp, zero_stage=[0, 1, 2, 3], sp=True)
    full = {"weights": m.weights_bytes[0], "gradients": m.gradients_bytes[0], "optimizer": m.optimizer_bytes[0]}
    first = {"weights": 3, "gradients": 2, "optimizer": 1}
    for part, stage in first.items():
        got = getattr(m, f"{part}_bytes")
        for z in range(4):
            expected = full[part] / (dp * cp) if z >= stage else full[part]
            assert got[z] == pytest.approx(expected, rel=1e-12), (part, z)


def test_state_bytes_per_parameter() -> None:
    """Unsharded states are 2 (weights) + 4 (fp32 gradients) + 12 (Adam) bytes per parameter of the GPU."""
    model = catalog_model("llama3-8b")
    m = memory(model)
    n = param_counts(model).total
    # stage_params leaves out the final norm (h parameters): hence 1e-6 rather than exact.
    assert m.weights_bytes[0] == pytest.approx(2 * n, rel=1e-6)
    assert m.gradients_bytes[0] == pytest.approx(4 * n, rel=1e-6)
    assert m.optimizer_bytes[0] == pytest.approx(12 * n, rel=1e-6)


def test_zero_shards_experts_over_expert_data_parallel_group() -> None:
    """MoE: ZeRO shards expert weights over tp*cp*dp/(ep*etp) ranks and the others over dp*cp."""
    model = catalog_model("mixtral-8x7b")
    tp, dp, cp, ep, etp = 2, 8, 1, 4, 1
    m = memory(model, tp=tp, dp=dp, cp=cp, ep=ep, etp=etp, zero_stage=[0, 1, 2, 3], sp=True)
    ne, ex = (float(x[0]) for x in stage_params(model, A([1]), A([tp]), A([ep]), A([etp])))
    assert ex > 0 and ne > 0
    edp = tp * cp * dp / (ep * etp)
    assert m.optimizer_bytes[0] == pytest.approx(12 * (ne + ex), rel=1e-12)
    for z in (1, 2, 3):
        assert m.optimizer_bytes[z] == pytest.approx(12 * (ne / (dp * cp) + ex / edp), rel=1e-12)
    assert m.weights_bytes[3] == pytest.approx(2 * (ne / (dp * cp) + ex / edp), rel=1e-12)


@pytest.mark.parametrize("pp", [2, 4, 8])
@pytest.mark.parametrize("vs", [2, 4])
def test_interleaved_in_flight_factor(pp: int, vs: int) -> None:
    """Interleaving with v virtual stages multiplies stored activations by 1 + (p-1)/(p*v) (Korthikanti §4.2.3)."""
    model = gpt_style(layers=64)
    m = memory(model, pp=pp, virtual_stages=[1, vs], global_batch=4096)
    ratio = m.activations_bytes[1] / m.activations_bytes[0]
    assert ratio == pytest.approx(1 + (pp - 1) / (pp * vs), rel=1e-12)


def test_first_stage_holds_pp_micro_batches() -> None:
    """1F1B: the first stage holds pp micro-batches of its L/pp layers, i.e. L layers' worth of activations."""
    model = gpt_style(layers=64)
    pp = 8
    m = memory(model, pp=pp, global_batch=4096)
    one_layer = layer_bytes(model, s=model.seq_len, b=1, t=1, sp=False, recompute=0, flash_attention=True)
    assert m.activations_bytes[0] == pytest.approx(model.layers * one_layer, rel=1e-12)


@pytest.mark.parametrize("vs", [1, 2])
def test_in_flight_capped_by_micro_batches(vs: int) -> None:
    """With fewer micro-batches than the schedule would hold, only that many are in flight."""
    model = gpt_style(layers=64)
    pp, micro_batches = 8, 3
    m = memory(model, pp=pp, virtual_stages=vs, global_batch=micro_batches)
    one_layer = layer_bytes(model, s=model.seq_len, b=1, t=1, sp=False, recompute=0, flash_attention=True)
    assert m.activations_bytes[0] == pytest.approx(micro_batches * model.layers / pp * one_layer, rel=1e-12)


def test_fp8_run_stores_less_activation_memory() -> None:
    """An fp8 run stores less activation memory than the same bf16 run unless full recompute keeps only inputs."""
    model = catalog_model("llama3-70b")
    cfg: dict[str, Any] = dict(tp=[1, 8, 8, 8], pp=[1, 4, 8, 8], recompute=[0, 1, 0, 2],
                               sp=[False, True, True, True])
    bf16, fp8 = memory(model, **cfg), memory(model, precision="fp8", **cfg)
    assert np.all(fp8.activations_bytes[:3] < bf16.activations_bytes[:3])
    assert fp8.activations_bytes[3] == bf16.activations_bytes[3]  # the 16-bit layer input only


def test_breakdown_sums_to_total() -> None:
    """The memory breakdown parts add up to total_bytes for every configuration, dense and MoE."""
    for model in (catalog_model("llama3-8b"), catalog_model("deepseek-v3")):
        m = memory(model, tp=[1, 2, 8], pp=[1, 2, 1], dp=[4, 8, 2], ep=[1, 8, 16], zero_stage=[0, 1, 3],
                   recompute=[0, 1, 2], sp=[False, True, True], micro_batch=[1, 2, 4])
        parts = m.parts()
        assert set(parts) == {"weights", "gradients", "optimizer", "activations", "transient", "workspace", "allocator",
                          "runtime"}
        np.testing.assert_allclose(sum(parts.values()), m.total_bytes, rtol=1e-15)
        assert all(np.all(v >= 0) for v in parts.values())


def test_selective_recompute_modules_drop_what_they_recompute() -> None:
    """Megatron-LM --recompute-modules: each module recomputed keeps less; the default is the attention core."""
    model = catalog_model("llama3-8b")

    def per_layer(modules: frozenset[str]) -> float:
        out = layer_activation_bytes(model, seq_len=4096, micro_batch=A([1]), tp=A([2]), cp=A([1]), sp=A([True]),
                                     ep=A([1]), etp=A([1]), recompute=A([1]), flash_attention=False,
                                     moe_layer=False, modules=modules)
        return float(out[0])

    default = per_layer(SELECTIVE_DEFAULT)
    assert default == per_layer(frozenset({"core_attn"}))
    with_mlp = per_layer(frozenset({"core_attn", "mlp"}))
    with_norm = per_layer(frozenset({"core_attn", "layernorm"}))
    assert with_mlp < default and with_norm < default
    assert per_layer(frozenset({"mlp"})) > with_mlp  # without core_attn the unfused scores stay


def test_per_op_checkpointing_sits_between_full_and_none() -> None:
    """torchtitan's per-op policy keeps every other matmul's output and the attention core's: less than keeping
    everything, more than the layer input alone; it recomputes wk, wo and w3 of a Llama layer."""
    model = catalog_model("llama3-8b")
    none, full, op = (layer_bytes(model, s=4096, b=1, t=1, sp=False, recompute=code, flash_attention=True)
                      for code in (0, 2, 4))
    assert full < op < none
    h, f, q, kv = model.hidden, model.ffn_hidden, model.heads * model.d_head, model.n_kv_heads * model.d_head
    share = (h * kv + q * h + h * f) / (h * q + 2 * h * kv + q * h + 3 * h * f)
    assert op_recompute_share(model) == pytest.approx(share, rel=1e-12)


def test_zero3_holds_the_gathered_layers_at_its_peak() -> None:
    """FSDP gathers the layer it computes and the next one whole, and holds a layer's gradients unsharded until their
    reduce-scatter: ZeRO-3's transient exceeds ZeRO-1's by two layers of 16-bit weights and one of gradients."""
    from supercluster.workload.memory import MemoryOptions

    model = catalog_model("llama3-70b")
    pc = param_counts(model)
    layer = pc.attention_layer + pc.dense_mlp_layer
    opts = MemoryOptions(grad_bytes=4.0)
    m = memory_per_gpu(model, seq_len=model.seq_len, global_batch=64, grad_accum_fp32=True, flash_attention=True,
                       precision="bf16", tp=A([1, 1]), pp=A([1, 1]), dp=A([64, 64]), cp=A([1, 1]), ep=A([1, 1]),
                       etp=A([1, 1]), micro_batch=A([1, 1]), virtual_stages=A([1, 1]), recompute=A([2, 2]),
                       zero_stage=A([1, 3]), sp=A([False, False]), options=opts)
    extra = float(m.transient_bytes[1] - m.transient_bytes[0])
    assert extra == pytest.approx(2 * 2 * layer + 4 * layer, rel=1e-9)


def test_zero3_by_tensor_holds_deepspeeds_live_parameters_not_two_layers() -> None:
    """DeepSpeed before 0.6 gathers module by module: at its peak the larger of the module in use (the MLP's
    input projection, h x 4h for a GPT) and max_live_parameters, plus the prefetch bucket, and gradients a reduce
    bucket at a time; FSDP by layer holds two layers and a layer's gradients. Same run otherwise."""
    from supercluster.workload.memory import MemoryOptions, largest_weight_tensor

    model = gpt_style(hidden=12288, ffn_hidden=4 * 12288, heads=96, layers=8)
    pc = param_counts(model)
    layer = pc.attention_layer + pc.dense_mlp_layer
    live, prefetch, bucket = 1.0e9, 5.0e7, 5.0e8
    up = 12288.0 * 4 * 12288
    assert float(largest_weight_tensor(model, A([1.0]), A([1.0]))[0]) == up
    assert float(largest_weight_tensor(model, A([4.0]), A([1.0]))[0]) == up / 4
    # Qwen3-235B-A22B: the attention's fused QKV (4096 x (64 + 2 x 4) x 128) outweighs an expert's gate and up
    # projections (2 x 4096 x 1536); expert tensor parallelism would split the latter further, not the former
    qwen = catalog_model("qwen3-235b-a22b")
    qkv = 4096.0 * (64 + 2 * 4) * 128
    assert float(largest_weight_tensor(qwen, A([1.0]), A([1.0]))[0]) == qkv
    assert float(largest_weight_tensor(qwen, A([1.0]), A([2.0]))[0]) == qkv
    assert float(largest_weight_tensor(qwen, A([8.0]), A([1.0]))[0]) == 2 * 4096.0 * 1536
    kw: dict[str, Any] = dict(seq_len=2048, global_batch=64, flash_attention=False, precision="fp16", tp=A([1]),
                              pp=A([1]), dp=A([64]), cp=A([1]), ep=A([1]), etp=A([1]), micro_batch=A([1]),
                              virtual_stages=A([1]), recompute=A([2]), sp=A([False]))
    by_layer, by_tensor, zero1 = (
        memory_per_gpu(model, zero_stage=A([z]), options=MemoryOptions(grad_bytes=2.0, zero3_by_tensor=zt), **kw)
        for z, zt in ((3, None), (3, (live, prefetch, bucket)), (1, None)))
    assert float(by_layer.transient_bytes[0] - zero1.transient_bytes[0]) == pytest.approx(
        2 * 2 * layer + 2 * layer, rel=1e-9)
    assert float(by_tensor.transient_bytes[0] - zero1.transient_bytes[0]) == pytest.approx(
        2 * (max(up, live) + prefetch) + 2 * min(layer, bucket), rel=1e-9)
    assert by_tensor.total_bytes[0] < by_layer.total_bytes[0]


def test_deepspeed_2021_zero3_run_fits_where_it_ran() -> None:
    """Megatron-LM SC'21 ran 530B with DeepSpeed ZeRO-3 (2021, tensor by tensor) at micro-batch 4 on 640 A100-80GB:
    the memory model puts it within the HBM (it put it at 122% when it gathered two whole layers)."""
    from supercluster.search.plan import best_step
    from supercluster.validate import DEFAULT_FILE
    from supercluster.validate.runs import run_to_scenario

    runs = yaml.safe_load(DEFAULT_FILE.read_text(encoding="utf-8"))["runs"]
    i = next(k for k, r in enumerate(runs) if r["id"] == "megatron21-t2-zero3-530b-640")
    report, _ = best_step(run_to_scenario(runs[i], file=str(DEFAULT_FILE), index=i), require_fit=False)
    assert report.parallelism["micro_batch"] == 4 and report.parallelism["zero_stage"] == 3
    assert report.fits


def test_distributed_optimizer_instances_shard_within_each_instance() -> None:
    from supercluster.workload.memory import MemoryOptions

    model = catalog_model("llama3-8b")
    one, two = (memory_per_gpu(model, seq_len=model.seq_len, global_batch=64, grad_accum_fp32=True,
                               flash_attention=True, precision="bf16", tp=A([1]), pp=A([1]), dp=A([8]), cp=A([1]),
                               ep=A([1]), etp=A([1]), micro_batch=A([1]), virtual_stages=A([1]), recompute=A([2]),
                               zero_stage=A([1]), sp=A([False]),
                               options=MemoryOptions(optimizer_instances=n)) for n in (1.0, 2.0))
    assert float(two.optimizer_bytes[0]) == pytest.approx(2 * float(one.optimizer_bytes[0]), rel=1e-12)
    assert float(two.gradients_bytes[0]) == float(one.gradients_bytes[0])


def test_multi_token_prediction_layers_sit_on_the_last_stage() -> None:
    """A multi-token-prediction layer adds a layer, its 2h x h projection, three norms and (untied) an embedding copy
    to the last stage's parameters, and a layer's activations; the first stage is unchanged."""
    from supercluster.workload.memory import stage_params_at
    model = gpt_style()
    pc = param_counts(model)
    h, t = 2048.0, 2.0
    one = A([1.0])
    first0, _, _ = stage_params_at(model, "first", A([2.0]), A([t]), one, one)
    first1, _, _ = stage_params_at(model, "first", A([2.0]), A([t]), one, one, mtp_layers=1)
    last0, _, _ = stage_params_at(model, "last", A([2.0]), A([t]), one, one)
    last1, _, _ = stage_params_at(model, "last", A([2.0]), A([t]), one, one, mtp_layers=1)
    layer = (pc.attention_layer + pc.dense_mlp_layer) / t + pc.norms_layer
    assert float(first1[0]) == float(first0[0])
    assert float(last1[0] - last0[0]) == pytest.approx(layer + 2 * h * h / t + 3 * h + pc.embedding / t, rel=1e-12)
    kw: dict[str, Any] = dict(seq_len=2048, global_batch=1024, flash_attention=True, precision="bf16", tp=A([2]), pp=A([2]),
                              dp=A([1]), cp=A([1]), ep=A([1]), etp=A([1]), micro_batch=A([1]),
                              virtual_stages=A([1]), recompute=A([0]), zero_stage=A([1]), sp=A([True]), stage="last")
    plain, mtp = memory_per_gpu(model, **kw), memory_per_gpu(model, **kw, mtp_layers=1)
    assert float(mtp.activations_bytes[0] - plain.activations_bytes[0]) == pytest.approx(
        float(plain.activations_bytes[0]) / 12, rel=1e-9)  # one more of the stage's 12 layers, one micro-batch


@pytest.mark.parametrize(("layers", "pp"), [(61, 16), (126, 16), (32, 4), (120, 105), (4, 8)])
def test_stage_layer_counts_put_the_extra_layers_last_or_first(layers: int, pp: int) -> None:
    """Every layer on one stage; floor(L/pp) a stage, the last L mod pp one more (the fullest is layers_per_stage's
    ceil(L/pp), the head's stage), the first ones with extra_first (the simulator's option)."""
    last = stage_layer_counts(layers, pp)
    first = stage_layer_counts(layers, pp, extra_first=True)
    extra = layers % pp
    assert sum(last) == sum(first) == layers
    assert last == [layers // pp] * (pp - extra) + [layers // pp + 1] * extra
    assert first == last[::-1]
    assert max(last) == layers_per_stage(layers, np.array(pp))


def test_stage_layer_counts_with_the_embedding_and_the_loss_counted() -> None:
    """Megatron-Core's embedding- and loss-aware split: L + e + l slots evenly, the first stage e and the last l
    layers fewer (Llama 3 405B on 16 stages: 7, 8 x 14, 7; only the loss: 8 x 15, 6 on 126 + 1 = 127 slots: the
    remainder to the last stages as without it); one stage splits nothing."""
    assert stage_layer_counts(126, 16, embedding=1, loss=1) == [7] + [8] * 14 + [7]
    assert sum(stage_layer_counts(126, 16, loss=1)) == 126
    assert stage_layer_counts(94, 8, embedding=1, loss=1) == [11] + [12] * 6 + [11]
    assert stage_layer_counts(30, 1, embedding=1, loss=1) == [30]


def test_the_memory_of_the_end_stages_follows_the_run_s_placement() -> None:
    """The memory model's first and last ranks hold what the run places there: ceil(L/pp) for an even split (None:
    nothing to place), one layer fewer each under the counted split (Llama 3 405B on 16 stages: 7 and 7 of 126), a
    layout's 't' (DeepSeek-V3's on 8 ranks of 2 chunks: 8 and 5, the MTP module counted apart); and the first rank,
    which holds the most micro-batches in flight, then needs less."""
    off = ["training.account_for_embedding_in_pipeline_split=false", "training.account_for_loss_in_pipeline_split=false",
           "parallelism.uneven_pipeline=true"]
    counted = load_scenario(SCENARIOS / "llama3-405b-16k.yaml")  # Llama 3's own split
    plain = load_scenario(SCENARIOS / "llama3-405b-16k.yaml", off)
    assert pipeline_end_layers(126, A([16.0]), plain.training) is None
    first, last = pipeline_end_layers(126, A([16.0, 8.0]), counted.training)
    assert list(first) == [7.0, 15.0] and list(last) == [7.0, 15.0]
    layout = Training(tokens=1e12, global_batch=4096, pipeline_layout="Et*4|(t*4|)*14tmL")
    first, last = pipeline_end_layers(61, A([8.0]), layout)
    assert (first[0], last[0]) == (8.0, 5.0)
    c = Candidates.from_columns(tp=8, pp=16, dp=128, cp=1, ep=1, etp=1, micro_batch=1, virtual_stages=1,
                                recompute="none", zero_stage=1, sp=True)
    assert candidate_memory(counted, c).total_bytes[0] < candidate_memory(plain, c).total_bytes[0]
