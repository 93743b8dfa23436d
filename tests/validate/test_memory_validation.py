"""Per-GPU memory measurements against the memory model: reading the rows, what each measured quantity is compared
with, the framework's accounting, the gate and the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from supercluster.errors import FileFormatError
from supercluster.spec import catalog
from supercluster.spec.hardware import Accelerator
from supercluster.spec.layout import expand_layout
from supercluster.validate import validation_kind
from supercluster.validate.memory import DEFAULT_MEMORY_FILE, predict_case, validate_memory
from supercluster.validate.memory_case import classify_quantity, describe_case, to_bytes
from supercluster.validate.systems import Unmodellable
from supercluster.workload.software import communicators, framework_memory_options, nccl_communicator_bytes

GIB = 2.0**30


def base_row(**changes: Any) -> dict[str, Any]:
    """A Megatron-LM-style row without arguments: GPT 1.3B-like on 8 A100, bf16, distributed optimizer."""
    row: dict[str, Any] = {
        "id": "synthetic",
        "source": {"citation": "test"},
        "gpu": "A100 80GB",
        "num_gpus": 8,
        "model": {"name": "gpt", "layers": 24, "hidden": 2048, "heads": 16, "kv_heads": 16, "ffn_hidden": 8192,
                  "vocab": 51200, "seq_len": 2048, "moe": None},
        "training": {"micro_batch": 2, "global_batch": 64, "precision": "bf16", "optimizer": "Adam",
                     "recompute": "none"},
        "parallelism": {"tp": 2, "pp": 1, "dp": 4, "cp": 1, "ep": 1, "virtual_stages": None,
                        "sequence_parallel": True, "zero_stage": "distributed optimizer", "fsdp": False},
        "measured": [{"quantity": "peak allocated (torch.cuda.max_memory_allocated)", "value": 20.0, "unit": "GiB"}],
        "notes": "",
    }
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(row.get(key), dict):
            row[key] = {**row[key], **value}
        else:
            row[key] = value
    return row


def write(tmp_path: Path, rows: list[dict[str, Any]], tolerance: dict[str, Any] | None = None) -> Path:
    path = tmp_path / "mem.yaml"
    body: dict[str, Any] = {"measurements": rows}
    if tolerance:
        body["tolerance"] = tolerance
    path.write_text(yaml.safe_dump(body), encoding="utf-8")
    return path


@pytest.mark.parametrize(("text", "metric"), [
    ('peak allocated: max over logged steps of torch.cuda.memory_stats()["allocated_bytes.all.peak"]',
     "peak_allocated"),
    ("Peak Memory Active (torch memory_stats active_bytes peak)", "peak_allocated"),
    ('current allocated after the last logged step ("mem-allocated-bytes"; weights+grads+optimizer+persistent '
     'buffers), last rank', "allocated_after_step"),
    ('per-GPU memory "Mem" from an nvidia-smi snapshot of the first node', "device_used"),
    ('weights+gradients+optimizer state per GPU ("par_opt")', "states"),
    ('activation memory per GPU ("act")', "activations"),
    ("activation memory relative to TP baseline (mode=seqsel)", "activation_ratio"),
    ("outcome", "outcome"),
])
def test_quantities_are_classified(text: str, metric: str) -> None:
    found = classify_quantity(text, None)
    assert found is not None and found[0] == metric


def test_another_tools_estimate_is_not_a_measurement() -> None:
    assert classify_quantity("Peak_Memory_Estimated (PR tool), rank 0", "as printed") is None


def test_units() -> None:
    assert to_bytes(3, "bytes") == (3.0, None)
    assert to_bytes(2, "MiB") == (2 * 2**20, None)
    value, note = to_bytes(5, "GB (as printed)")
    assert value == 5 * GIB and note and "GiB" in note
    with pytest.raises(Unmodellable):
        to_bytes(1, "furlongs")


def test_pipeline_layout_expands_to_its_segments() -> None:
    assert expand_layout("Et*3|(tt|)*6mL") == ["Ettt", "tt", "tt", "tt", "tt", "tt", "tt", "mL"]


def test_a_memory_file_is_its_own_kind(tmp_path: Path) -> None:
    assert validation_kind(DEFAULT_MEMORY_FILE) == "memory"
    mixed = write(tmp_path, [base_row(), {"id": "c", "op": "all_reduce", "system": {}}])
    with pytest.raises(FileFormatError, match="one kind"):
        validation_kind(mixed)
    other = tmp_path / "other.yaml"
    other.write_text("rows: []\n", encoding="utf-8")
    with pytest.raises(FileFormatError, match="memory measurements"):
        validation_kind(other)


def test_states_follow_the_documented_accounting() -> None:
    """Megatron-LM's distributed optimizer: 2 (bf16 weights) + 4 (fp32 gradients) + 12/dp B per parameter; without
    it 18; fp16 20 (its fp32 gradient copy), as Megatron-LM's documentation tabulates."""
    per_param = {}
    for precision, zero in (("bf16", "distributed optimizer"), ("bf16", 0), ("fp16", 0)):
        row = base_row(training={"precision": precision}, parallelism={"zero_stage": zero, "tp": 1, "dp": 8})
        b = predict_case(describe_case(row))
        case = describe_case(row)
        from supercluster.workload.params import param_counts
        n = param_counts(case.model).total
        per_param[(precision, zero)] = float(b.states_bytes[0]) / n
    assert per_param[("bf16", "distributed optimizer")] == pytest.approx(6 + 12 / 8, rel=1e-3)
    assert per_param[("bf16", 0)] == pytest.approx(18, rel=1e-3)
    assert per_param[("fp16", 0)] == pytest.approx(20, rel=1e-3)


def test_stated_optimizers_change_the_state() -> None:
    plain = predict_case(describe_case(base_row()))
    eight_bit = predict_case(describe_case(base_row(training={"optimizer": "8-bit AdamW (bitsandbytes)"})))
    muon = predict_case(describe_case(base_row(training={"optimizer": "muon"})))
    assert float(eight_bit.optimizer_bytes[0]) < float(muon.optimizer_bytes[0]) < float(plain.optimizer_bytes[0])
    in_bwd = predict_case(describe_case(base_row(training={"optimizer": "AdamW in backward"})))
    assert float(in_bwd.gradients_bytes[0]) < 0.2 * float(plain.gradients_bytes[0])


def test_pure_bf16_has_no_master_copy() -> None:
    row = base_row(training={"precision": "bf16 parameters (no fp32 master copy; AdamW states are bf16)"},
                   parallelism={"zero_stage": 0, "tp": 1, "dp": 8})
    b = predict_case(describe_case(row))
    from supercluster.workload.params import param_counts
    n = param_counts(describe_case(row).model).total
    assert float(b.states_bytes[0]) / n == pytest.approx(2 + 2 + 4, rel=1e-3)


def test_activation_offload_and_recompute_lower_activations() -> None:
    none = predict_case(describe_case(base_row()))
    full = predict_case(describe_case(base_row(training={"recompute": "full AC"})))
    offload = predict_case(describe_case(base_row(training={"recompute": "full AC + activation offloading"})))
    assert float(offload.activations_bytes[0]) < float(full.activations_bytes[0]) < float(none.activations_bytes[0])


def test_device_used_adds_context_and_nccl() -> None:
    """nvidia-smi sees the CUDA context and NCCL's buffers, which torch's counters do not."""
    b = predict_case(describe_case(base_row()))
    assert float(b.total_bytes[0]) > float(b.allocated_bytes[0])
    acc = Accelerator.model_validate(catalog.entry("accelerators", "H100-SXM5-80GB"))
    few = framework_memory_options("megatron-lm", accelerator=acc, precision="bf16", communicators=1)
    many = framework_memory_options("megatron-lm", accelerator=acc, precision="bf16", communicators=5)
    assert many.runtime_bytes - few.runtime_bytes == pytest.approx(4 * nccl_communicator_bytes("megatron-lm"))
    assert communicators("megatron-deepspeed", {"tp": 8, "pp": 4, "dp": 2}) > communicators(
        "megatron-lm", {"tp": 8, "pp": 4, "dp": 2})


def test_last_rank_holds_the_loss_and_first_the_most_micro_batches() -> None:
    row = base_row(parallelism={"pp": 4, "dp": 1})
    case = describe_case(row)
    case.stage = "first"
    first = predict_case(case)
    case.stage = "last"
    last = predict_case(case)
    assert float(first.activations_bytes[0]) > float(last.activations_bytes[0])
    assert float(last.transient_bytes[0]) > float(first.transient_bytes[0])


def test_relative_activation_rows_reproduce_korthikanti() -> None:
    """The paper's ratios follow from its closed forms (Table 2): e.g. full recompute 2/(10 + 24/t + 5as/ht)."""
    result = validate_memory()
    ratios = [r for r in result.rows if r.metric == "activation_ratio"]
    assert len(ratios) == 20
    assert all(abs(r.rel_error) < 0.02 for r in ratios if r.rel_error is not None)


def test_unmappable_rows_give_their_reason_and_count(tmp_path: Path) -> None:
    rows = [base_row(id="ok"), base_row(id="no-gpu", gpu="not stated"),
            base_row(id="no-heads", model={"heads": None})]
    result = validate_memory(write(tmp_path, rows, {"median_abs_rel_error": 10, "max_abs_rel_error": 10,
                                                    "max_unmappable": 1}))
    errors = {r.id: r.error for r in result.rows if r.error}
    assert set(errors) == {"no-gpu", "no-heads"}
    assert "GPU" in errors["no-gpu"] and "heads" in errors["no-heads"]
    assert result.unmappable == 2 and not result.passed
    assert any("cannot be modelled" in f for f in result.failures)


def test_oom_outcome_is_checked(tmp_path: Path) -> None:
    huge = base_row(id="huge", model={"layers": 400, "hidden": 8192, "heads": 64, "kv_heads": 64,
                                      "ffn_hidden": 32768},
                    parallelism={"tp": 1, "dp": 8, "zero_stage": 0},
                    measured=[{"quantity": "outcome", "value": "OOM", "unit": None}])
    result = validate_memory(write(tmp_path, [huge], {"median_abs_rel_error": 1, "max_abs_rel_error": 1,
                                                     "max_unmappable": 0}))
    (row,) = result.rows
    assert row.predicted_outcome == "OOM" and result.outcomes_correct == 1 and result.passed


def test_cli_json_and_exit_codes(tmp_path: Path, cli: Any) -> None:
    good = write(tmp_path, [base_row()], {"median_abs_rel_error": 10, "max_abs_rel_error": 10, "max_unmappable": 0})
    out = cli("validate", str(good), "--json")
    assert out.code == 0, out.err
    data = json.loads(out.out)
    (row,) = data["rows"]
    for key in ("id", "predicted_bytes", "expected_bytes", "rel_error", "components", "metric"):
        assert key in row
    assert set(row["components"]) >= {"weights", "gradients", "optimizer", "activations", "transient", "runtime"}
    assert "median_abs_rel_error" in data and "max_abs_rel_error" in data
    tight = write(tmp_path, [base_row()], {"median_abs_rel_error": 0, "max_abs_rel_error": 0, "max_unmappable": 0})
    bad = cli("validate", str(tight))
    assert bad.code == 1
    assert "memory validation" in bad.out
    cv = cli("validate", str(good), "--cv")
    assert cv.code == 2 and "memory file" in cv.err and "Traceback" not in cv.err


def test_components_sum_to_what_is_compared() -> None:
    b = predict_case(describe_case(base_row()))
    parts = b.parts()
    assert sum(float(v[0]) for v in parts.values()) == pytest.approx(float(b.total_bytes[0]), rel=1e-12)
    assert np.all(b.allocated_bytes <= b.reserved_bytes)


def test_muon_without_the_param_layout_holds_the_embedding_whole() -> None:
    """Megatron-LM's Muon under the distributed optimizer without the shard-aligned layout deals whole tensors to the
    data-parallel ranks: the fullest rank keeps the embedding's fp32 copy and Adam state unsharded (12 B a parameter),
    with the layout (the default) the embedding is sharded like the rest."""
    args = {"--optimizer": "muon", "--use-distributed-optimizer": True, "--num-layers": 24, "--hidden-size": 2048,
            "--num-attention-heads": 16, "--seq-length": 2048, "--micro-batch-size": 2, "--bf16": True,
            "--vocab-size": 51200}
    layout = describe_case(base_row(megatron_args=args))
    ping_pong = describe_case(base_row(megatron_args={**args, "--no-use-layer-wise-param-layout": True}))
    from supercluster.workload.params import param_counts
    embedding = param_counts(layout.model).embedding / layout.degrees["tp"]
    dp = layout.degrees["dp"]
    extra = float(predict_case(ping_pong).optimizer_bytes[0] - predict_case(layout).optimizer_bytes[0])
    assert extra == pytest.approx(12.0 * embedding * (1 - 1 / dp), rel=1e-9)


def test_megatron_rows_tie_the_output_layer_to_the_embedding_unless_stated() -> None:
    """Megatron-LM and Megatron-DeepSpeed's GPT reuse the word embedding as the output layer: one copy on a single
    pipeline stage, unless the row says the two are untied."""
    for framework_words in ("", "Megatron-DeepSpeed (DeepSpeed ZeRO-1)"):
        tied = describe_case(base_row(notes=framework_words, parallelism={"pp": 1}))
        untied = describe_case(base_row(notes=framework_words, model={"notes": "untied embeddings"},
                                        parallelism={"pp": 1}))
        assert tied.model.tied_embeddings and not untied.model.tied_embeddings
        extra = float(predict_case(untied).weights_bytes[0] - predict_case(tied).weights_bytes[0])
        assert extra == pytest.approx(2.0 * 51200 * 2048 / tied.degrees["tp"], rel=1e-9)


def test_deferred_embedding_wgrad_keeps_the_logit_gradients_to_the_flush() -> None:
    """--defer-embedding-wgrad-compute keeps up to --wgrad-deferral-limit micro-batches' 16-bit logit gradients (and
    the output layer's inputs) on the last stage until the pipeline flush; limit 0 means every micro-batch."""
    args = {"--num-layers": 24, "--hidden-size": 2048, "--num-attention-heads": 16, "--seq-length": 2048,
            "--micro-batch-size": 2, "--global-batch-size": 64, "--bf16": True, "--vocab-size": 51200,
            "--tensor-model-parallel-size": 2, "--pipeline-model-parallel-size": 2}
    par = {"tp": 2, "pp": 2, "dp": 2}
    plain = describe_case(base_row(megatron_args=args, parallelism=par))
    two = describe_case(base_row(megatron_args={**args, "--defer-embedding-wgrad-compute": True,
                                                "--wgrad-deferral-limit": 2}, parallelism=par))
    every = describe_case(base_row(megatron_args={**args, "--defer-embedding-wgrad-compute": True},
                                   parallelism=par))
    vocab = two.model.vocab
    per_mb = 2.0 * 2 * 2048 * (vocab / 2 + 2048)  # bf16, mb 2, s 2048, V/tp and h (no sequence parallelism)
    base = float(predict_case(plain).transient_bytes[0])
    assert float(predict_case(two).transient_bytes[0]) - base == pytest.approx(2 * per_mb, rel=1e-9)
    microbatches = 64 / (2 * 2)
    assert float(predict_case(every).transient_bytes[0]) - base == pytest.approx(microbatches * per_mb, rel=1e-9)


def test_an_embedding_with_its_own_pipeline_slot_takes_a_layer_off_its_stage() -> None:
    """DeepSpeed's partition_method 'type:transformer|embed' balances L + 2 units over the stages: the embedding's
    stage holds one transformer layer fewer than the fullest share."""
    par, model = {"pp": 4, "dp": 1}, {"layers": 26}
    plain = describe_case(base_row(parallelism=par, model=model))
    slots = describe_case(base_row(parallelism=par, model=model,
                                   notes="--pp-partition-method type:transformer|embedding (each embedding gets its "
                                         "own pipeline slot)"))
    assert plain.stage_layers is None  # ceil(26 / 4) = 7 layers
    assert slots.stage_layers == 6  # (26 + 2) / 4 units, one of them the embedding
    assert float(predict_case(slots).weights_bytes[0]) < float(predict_case(plain).weights_bytes[0])


def test_per_layer_cuda_graphs_keep_static_inputs_for_the_layers_in_flight() -> None:
    """Transformer Engine per-layer CUDA graphs keep each in-flight layer forward's static hidden states and, with
    attention graphed, its [b, 1, s, s] boolean mask: persistent, so in the allocation after the step too."""
    args = {"--num-layers": 24, "--hidden-size": 2048, "--num-attention-heads": 16, "--seq-length": 2048,
            "--micro-batch-size": 2, "--global-batch-size": 64, "--bf16": True, "--vocab-size": 51200,
            "--tensor-model-parallel-size": 2}
    plain = predict_case(describe_case(base_row(megatron_args=args)))
    mlp = predict_case(describe_case(base_row(megatron_args={**args, "--cuda-graph-impl": "transformer_engine",
                                                             "--cuda-graph-modules": "[mlp]"})))
    attn = predict_case(describe_case(base_row(megatron_args={**args, "--cuda-graph-impl": "transformer_engine",
                                                              "--cuda-graph-modules": "attn"})))
    hidden = 2.0 * 2 * 2048 * 2048  # bf16 [s, b, h], no sequence parallelism; one micro-batch in flight, 24 layers
    mask = 2 * 2048 * 2048
    base = float(plain.workspace_bytes[0])
    assert float(mlp.workspace_bytes[0]) - base == pytest.approx(24 * hidden, rel=1e-9)
    assert float(attn.workspace_bytes[0]) - base == pytest.approx(24 * (hidden + mask), rel=1e-9)


def test_tp_comm_overlap_gemms_take_their_own_te_workspaces() -> None:
    """Transformer Engine's Userbuffers GEMMs (--tp-comm-overlap) use a cached workspace of three per-stream
    workspaces beside the plain one; the Userbuffers themselves are outside PyTorch's allocator."""
    acc = Accelerator.model_validate({"name": "H100-SXM5-80GB", **catalog.entry("accelerators", "H100-SXM5-80GB")})
    plain = framework_memory_options("megatron-lm", accelerator=acc, precision="bf16")
    overlap = framework_memory_options("megatron-lm", accelerator=acc, precision="bf16", tp_comm_overlap=True)
    assert overlap.workspace_bytes - plain.workspace_bytes == pytest.approx(3 * (32 * 2**20 + 1024))
    args = {"--num-layers": 24, "--hidden-size": 2048, "--num-attention-heads": 16, "--seq-length": 2048,
            "--micro-batch-size": 2, "--bf16": True, "--vocab-size": 51200, "--tensor-model-parallel-size": 2}
    assert describe_case(base_row(megatron_args={**args, "--tp-comm-overlap": True})).tp_comm_overlap
    assert not describe_case(base_row(megatron_args=args)).tp_comm_overlap


FSDP_ARGS = {"--num-layers": 4, "--hidden-size": 1024, "--num-attention-heads": 8, "--seq-length": 1024,
             "--micro-batch-size": 2, "--global-batch-size": 16, "--bf16": True, "--vocab-size": 32768,
             "--untie-embeddings-and-output-weights": True, "--use-megatron-fsdp": True,
             "--data-parallel-sharding-strategy": "optim_grads_params", "--use-distributed-optimizer": True,
             "--megatron-fsdp-main-grads-dtype": "fp32"}


def test_megatron_fsdp_keeps_the_embedding_and_output_layer_gathered_after_the_step() -> None:
    """Megatron-FSDP never releases the buckets outside its transformer-layer units, and since 2026-05-30
    (Megatron-LM #4717) not at the step's end either: the gathered 16-bit embedding and output layer stay beside
    their shards after the step. The peak, which gathered them anyway, is unchanged; a row whose figures were
    recorded before (source.values_recorded) is modelled with that day's software."""
    row = base_row(megatron_args=FSDP_ARGS, parallelism={"tp": 1, "dp": 8})
    now = predict_case(describe_case(row))
    before = predict_case(describe_case({**row, "source": {"citation": "test", "values_recorded": "2026-05-29"}}))
    ends = 2 * 32768 * 1024  # embedding and untied output layer, tp 1
    assert float(now.weights_bytes[0]) - float(before.weights_bytes[0]) == pytest.approx(2.0 * ends, rel=1e-9)
    assert float(now.allocated_bytes[0]) == pytest.approx(float(before.allocated_bytes[0]), rel=1e-9)
    later = predict_case(describe_case({**row, "source": {"citation": "test", "values_recorded": "2026-06-01"}}))
    assert float(later.weights_bytes[0]) == pytest.approx(float(now.weights_bytes[0]), rel=1e-12)
    one_rank = predict_case(describe_case(base_row(megatron_args=FSDP_ARGS, parallelism={"tp": 1, "dp": 1},
                                                   num_gpus=1)))
    unsharded = predict_case(describe_case(base_row(megatron_args={**FSDP_ARGS, "--use-megatron-fsdp": False},
                                                    parallelism={"tp": 1, "dp": 1}, num_gpus=1)))
    assert float(one_rank.weights_bytes[0]) == pytest.approx(float(unsharded.weights_bytes[0]), rel=1e-9)


def test_a_values_recorded_date_that_is_not_a_date_is_bad_input(tmp_path: Path, cli: Any) -> None:
    """source.values_recorded must be a date: anything else is one located line and exit 2, not a row."""
    row = base_row(source={"citation": "test", "values_recorded": "last spring"})
    f = write(tmp_path, [row])
    cli("validate", str(f)).one_error_line(str(f), "measurements[0].source", "values_recorded", "'synthetic'")


def test_deepspeed_without_zero_peaks_at_its_fp16_optimizer_step() -> None:
    """Megatron-DeepSpeed at ZeRO stage 0: DeepSpeed's FP16_Optimizer converts every 16-bit gradient to fp32 and
    joins the copies into one flat fp32 gradient before dropping the 16-bit ones, so its step holds 2 + 4 + 4 B per
    parameter beside the weights and the unsharded master and Adam state; with the activations gone, that is the
    peak when it exceeds the backward's."""
    row = base_row(notes="Megatron-DeepSpeed", parallelism={"zero_stage": "ZeRO-0 (no sharding)", "tp": 8, "dp": 1},
                   training={"micro_batch": 1, "global_batch": 8, "recompute": "full"})
    case = describe_case(row)
    assert case.framework == "megatron-deepspeed" and case.zero_stage == 0
    b = predict_case(case)
    params = float(b.weights_bytes[0]) / 2.0
    step = float(b.weights_bytes[0] + b.optimizer_bytes[0]) + 10.0 * params
    assert float(b.allocated_bytes[0]) - float(b.workspace_bytes[0]) == pytest.approx(step, rel=1e-9)
    sharded = predict_case(describe_case({**row, "parallelism": {**row["parallelism"], "zero_stage": "ZeRO-1"}}))
    assert float(sharded.transient_bytes[0]) < float(b.transient_bytes[0])
