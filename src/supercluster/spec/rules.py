"""The rules a parallel configuration must obey, written once over numpy arrays.

The same function checks a user's scenario (scalars: every broken rule becomes a message naming its factors)
and prunes the search space (arrays: a boolean mask per rule, applied as soon as the degrees it needs are known).
Degrees: tp pp dp cp ep etp, micro_batch (mb), virtual_stages (vs), sp (sequence parallelism), zero_stage;
m = global_batch / (dp * mb) micro-batches per step.

Every rule is one a training framework enforces, cited to its source (read at NVIDIA/Megatron-LM d98e8a64dd,
pytorch/torchtitan b5bcd76c66, deepspeedai/DeepSpeed edaa722126; 2026-08), or an accounting identity:

- the training precision runs on units the accelerator has: its catalog entry gives a dense peak for it
  (Transformer Engine refuses fp8 below compute capability 8.9, i.e. on A100, and NVFP4 below 10.0, i.e. before
  Blackwell: transformer_engine/pytorch/fp8.py check_fp8_support, check_nvfp4_support); these two rules need no
  degree and are checked before any search;
- an fp8 recipe is named for an fp8 run only, and MXFP8 runs on Blackwell only (Transformer Engine
  check_mxfp8_support: compute capability 10.0 on);
- one step's tokens, global_batch * seq_len, are at most the run's tokens (the run is at least one whole step:
  otherwise its step time exceeds its time to train);
- world = tp * pp * dp * cp (Megatron-Core parallel_state.initialize_model_parallel);
- tp divides the attention heads; tp and the KV heads divide one another (Megatron-Core TransformerConfig);
- a tensor-parallel group stays inside one scale-up domain (it all-gathers every layer's activations);
- cp > 1 splits the sequence into 2 * cp chunks for causal load balance: seq % (2 cp) == 0 (Megatron-LM
  arguments.validate_args, 'seq-length should be a multiple of 2 * context-parallel-size');
- sequence parallelism scatters each context-parallel rank's tokens over tp: (seq / cp) % tp == 0 (Megatron-Core
  tensor_parallel/mappings.py _split_along_first_dim);
- a mixture-of-experts layer with tp > 1 runs with sequence parallelism (Megatron-Core moe_layer.MoELayer.forward
  raises otherwise);
- experts % ep == 0 and (tp * cp * dp) % (ep * etp) == 0: expert parallelism folds over the tensor, context and
  data ranks (Megatron-Core initialize_model_parallel, 'MoE parallel folding');
- global_batch % (dp * mb) == 0 (Megatron-LM microbatch calculator); with training.pipeline_flushes F > 1 (one
  pipeline schedule a gradient-accumulation step, torchtitan and NeMo Automodel) m % F == 0, and the schedule
  rules below hold for each schedule's m / F;
- the interleaved schedule (vs > 1) needs pp > 1 and m >= pp: its micro-batches run in groups of g in [pp, m]
  (microbatch_group_size_per_vp_stage, pp by default), the last group none or at least pp (Megatron-Core
  pipeline_parallel/schedules.py forward_backward_pipelining_with_interleaving), so any m >= pp runs with the
  smallest such g (spec.training.microbatch_group), m % pp == 0 with the default; 1F1B runs any m (its warm-up is
  min(pp - rank - 1, m));
- the pipeline schedule is one the framework runs (catalog/software.yaml schedules, each cited there); 1f1b and
  zb-h1 and dualpipe hold one chunk a stage, interleaved more (virtual_stages > 1); zb-h1 and dualpipe need a
  pipeline (the zero-bubble runtime falls back to 1F1B without one: sail-sg/zero-bubble-pipeline-parallelism
  zb-h1-quick-start WeightGradStore.is_supported); DualPipe needs an even pp and an even number of micro-batches,
  at least 2 pp (deepseek-ai/DualPipe @3da1bbea dualpipe.py DualPipe.step: 'num_ranks % 2 == 0', 'num_chunks %
  2 == 0 and num_chunks >= num_ranks * 2': half the micro-batches enter at each end);
- layers split over pp stages (and pp * vs chunks) evenly (Megatron-LM validate_args), unless the pipeline is
  uneven (decoder_first/last_pipeline_num_layers or pipeline_model_parallel_layout): then every chunk still needs a
  layer;
- ZeRO-2/3 with pp > 1 is accepted and run as torchtitan runs FSDP under a pipeline (parameters stay gathered from
  the first forward to the last backward, gradients reduce-scattered once per step: torchtitan
  distributed/fsdp.py get_fsdp_reshard_after_forward_policy; torch.distributed.pipelining stage.py), which costs what
  ZeRO-1 costs (see workload.memory.effective_zero_stage); DeepSpeed's pipeline engine refuses it
  (runtime/pipe/engine.py: 'ZeRO-2 and ZeRO-3 are incompatible with pipeline parallelism').

Where a framework runs a feature rather than refusing a configuration:

- Megatron-Core's batch-level expert all-to-all overlap (--overlap-moe-expert-parallel-comm) runs with ep > 1,
  with virtual stages when pp > 1 and without full-layer recomputation (core/transformer/transformer_config.py
  __post_init__: 'virtual_pipeline_model_parallel_size must be specified when pipeline_model_parallel_size > 1',
  'only supported with expert model parallelism', 'disable full recomputation'); a configuration outside that
  runs without it (ep_overlap_runs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, get_args

import numpy as np

from .base import TrainingPrecision
from .hardware import Cluster
from .layout import expand_layout, transformer_layers
from .model import Model
from .software import framework_software
from .training import SCHEDULES, Training, pipeline_accounting, resolved_fp8_recipe

INTERLEAVED, ZB_H1, DUALPIPE = (SCHEDULES.index(n) for n in ("interleaved", "zb-h1", "dualpipe"))


def _schedule_name(code: Any) -> str:
    return SCHEDULES[int(code)]


@dataclass(frozen=True)
class Rule:
    field: str
    ok: Callable[[dict[str, Any]], Any]
    message: Callable[[dict[str, Any]], str]
    needs: tuple[str, ...]


def _divides(a: Any, b: Any) -> Any:
    return np.mod(b, a) == 0


def ep_overlap_runs(ep: Any, pp: Any, virtual_stages: Any, full_recompute: Any) -> Any:
    """Where Megatron-Core runs its batch-level expert all-to-all overlap (see the module's notes): expert
    parallelism, a pipeline only when interleaved, no full-layer recomputation."""
    return (np.asarray(ep) > 1) & ((np.asarray(pp) == 1) | (np.asarray(virtual_stages) > 1)) & ~np.asarray(
        full_recompute, dtype=bool)


def rules_for(model: Model, cluster: Cluster, training: Training, uneven_pipeline: bool = False) -> list[Rule]:
    """Rules bound to one model, cluster and training run; each reads the degrees it `needs`."""
    n = cluster.num_gpus
    seq = training.seq_len or model.seq_len
    gb = training.global_batch
    experts = model.moe.experts if model.moe else 1
    kv = model.n_kv_heads
    domain = cluster.domain_gpus
    L = model.layers

    def microbatches(p: dict[str, Any]) -> Any:
        return gb // (p["dp"] * p["micro_batch"])

    flushes = training.pipeline_flushes

    def per_schedule(p: dict[str, Any]) -> Any:
        """Micro-batches one pipeline schedule runs (training.pipeline_flushes schedules a step)."""
        return microbatches(p) // flushes

    flushed = f" / pipeline_flushes({flushes})" if flushes > 1 else ""

    acc, precision = cluster.accelerator, training.precision
    peaks = acc.dense_peak_flops_per_s
    applicable = {"core_attn": True, "layernorm": True, "mla_up_proj": model.attention == "mla",
                  "moe": model.moe is not None, "moe_act": model.moe is not None,
                  "shared_experts": model.moe is not None and bool(model.moe.shared_experts),
                  "mlp": model.moe_layers < model.layers}
    inapplicable = [m for m in training.recompute_modules or () if not applicable[m]]
    trainable = [p for p in get_args(TrainingPrecision) if p in peaks]
    rules = [
        Rule("training.precision", lambda p: precision in peaks,
             lambda p: f"{acc.name} has no {precision} units: its catalog entry gives dense peaks for "
                       f"{', '.join(peaks)} only (Transformer Engine runs fp8 from compute capability 8.9: "
                       f"check_fp8_support, NVFP4 from 10.0: check_nvfp4_support); train in "
                       f"{' or '.join(trainable)}", ()),
        Rule("training.fp8_recipe", lambda p: training.fp8_recipe is None or precision == "fp8",
             lambda p: f"fp8_recipe({training.fp8_recipe}) scales an fp8 run's GEMM inputs; this run trains in "
                       f"{precision}: drop fp8_recipe or set precision fp8", ()),
        Rule("training.fp8_recipe",
             lambda p: training.fp8_recipe != "mxfp8" or acc.architecture == "blackwell",
             lambda p: f"mxfp8 needs Blackwell tensor cores (Transformer Engine check_mxfp8_support: compute "
                       f"capability 10.0 on); {acc.name} is not Blackwell: use delayed or tensorwise", ()),
        Rule("training.fp8_output_proj",
             lambda p: not training.fp8_output_proj
             or resolved_fp8_recipe(training, acc.architecture) == "mxfp8",
             lambda p: "fp8_output_proj runs the LM head under MXFP8 (Megatron-Core transformer_config.py: fp8 with "
                       f"the mxfp8 recipe only); this run trains in {precision}"
                       + (f" with the {resolved_fp8_recipe(training, acc.architecture)} recipe"
                          if precision == "fp8" else "") + ": drop fp8_output_proj", ()),
        Rule("training.recompute_modules", lambda p: not inapplicable,
             lambda p: f"recompute_modules names {', '.join(inapplicable)}, which this model has none of "
                       "(Megatron-Core transformer_config.py --recompute-modules: mla_up_proj needs multi-latent "
                       "attention, moe and moe_act a mixture of experts, shared_experts shared experts, mlp a dense "
                       "MLP layer, as transformer_layer.py recomputes mlp only where the MLP is not a MoELayer): drop "
                       "them", ()),
        Rule("training.global_batch", lambda p: gb * seq <= training.tokens,
             lambda p: f"one step trains on global_batch({gb}) * seq_len({seq}) = {gb * seq:.4g} tokens, more than "
                       f"the run's tokens({training.tokens:.4g}): the run must be at least one step; lower "
                       "global_batch or raise tokens", ()),
        Rule("parallelism", lambda p: p["tp"] * p["pp"] * p["dp"] * p["cp"] == n,
             lambda p: f"tp({p['tp']}) * pp({p['pp']}) * dp({p['dp']}) * cp({p['cp']}) = "
                       f"{p['tp'] * p['pp'] * p['dp'] * p['cp']} != num_gpus({n})",
             ("tp", "pp", "dp", "cp")),
        Rule("parallelism.tp", lambda p: _divides(p["tp"], model.heads),
             lambda p: f"tp({p['tp']}) does not divide heads({model.heads})", ("tp",)),
        Rule("parallelism.tp", lambda p: _divides(p["tp"], domain) | _divides(domain, p["tp"]),
             lambda p: f"tp({p['tp']}) and the scale-up domain of {domain} GPUs must divide one another "
                       "(a tensor-parallel group may not straddle domains)", ("tp",)),
        Rule("parallelism.tp", lambda p: _divides(p["tp"], kv) | _divides(kv, p["tp"]),
             lambda p: f"tp({p['tp']}) and kv_heads({kv}) must divide one another", ("tp",)),
        Rule("parallelism.cp", lambda p: (p["cp"] == 1) | _divides(2 * p["cp"], seq),
             lambda p: f"cp({p['cp']}) splits seq_len({seq}) into 2 * cp = {2 * p['cp']} load-balanced chunks, "
                       "which must divide it (Megatron-LM: 'seq-length should be a multiple of 2 * "
                       "context-parallel-size')", ("cp",)),
        Rule("parallelism.sequence_parallel",
             lambda p: ~np.asarray(p["sp"], dtype=bool) | _divides(p["tp"] * p["cp"], seq),
             lambda p: f"sequence parallelism scatters each context-parallel rank's seq_len({seq}) / cp({p['cp']}) "
                       f"tokens over tp({p['tp']}), which must divide them (Megatron-Core "
                       "_split_along_first_dim)", ("tp", "cp", "sp")),
        Rule("parallelism.ep", lambda p: _divides(p["ep"], experts),
             lambda p: f"ep({p['ep']}) does not divide experts({experts})", ("ep",)),
        Rule("parallelism.ep", lambda p: _divides(p["ep"] * p["etp"], p["tp"] * p["cp"] * p["dp"]),
             lambda p: f"ep({p['ep']}) * etp({p['etp']}) does not divide tp({p['tp']}) * cp({p['cp']}) * "
                       f"dp({p['dp']}) = {p['tp'] * p['cp'] * p['dp']}",
             ("ep", "etp", "tp", "cp", "dp")),
        Rule("parallelism.etp", lambda p: _divides(p["etp"], model.moe.moe_ffn_hidden if model.moe else 1),
             lambda p: f"etp({p['etp']}) does not divide moe_ffn_hidden", ("etp",)),
        Rule("training.global_batch", lambda p: _divides(p["dp"] * p["micro_batch"], gb),
             lambda p: f"global_batch({gb}) is not divisible by dp({p['dp']}) * "
                       f"micro_batch({p['micro_batch']}) = {p['dp'] * p['micro_batch']}",
             ("dp", "micro_batch")),
        Rule("training.pipeline_flushes", lambda p: _divides(flushes, microbatches(p)),
             lambda p: f"pipeline_flushes({flushes}) schedules a step share its m = global_batch({gb}) / "
                       f"(dp({p['dp']}) * micro_batch({p['micro_batch']})) = {microbatches(p)} micro-batches: m must "
                       "be a multiple of it (a gradient-accumulation step's local_batch_size / pp_microbatch_size "
                       "micro-batches each)", ("dp", "micro_batch")),
        Rule("parallelism.virtual_stages", lambda p: (p["pp"] > 1) | (p["virtual_stages"] == 1),
             lambda p: f"virtual_stages({p['virtual_stages']}) > 1 needs pp > 1", ("pp", "virtual_stages")),
        Rule("parallelism.virtual_stages", lambda p: p["pp"] * p["virtual_stages"] <= L,
             lambda p: f"pp({p['pp']}) * virtual_stages({p['virtual_stages']}) exceeds layers({L}): "
                       "every chunk needs a layer", ("pp", "virtual_stages")),
        Rule("parallelism.virtual_stages",
             lambda p: (p["virtual_stages"] == 1) | (per_schedule(p) >= p["pp"]),
             lambda p: f"the interleaved schedule (virtual_stages {p['virtual_stages']}) runs micro-batches in groups "
                       f"of at least pp({p['pp']}): it needs m = global_batch({gb}) / (dp({p['dp']}) * "
                       f"micro_batch({p['micro_batch']})){flushed} = {per_schedule(p)} >= pp "
                       "(Megatron-Core forward_backward_pipelining_with_interleaving, microbatch_group_size_per_vp_stage);"
                       " use virtual_stages 1 (1F1B) or more micro-batches",
             ("pp", "virtual_stages", "dp", "micro_batch")),
    ]
    framework = training.framework
    runs = framework_software(framework).schedules
    allowed = [SCHEDULES.index(x) for x in runs]
    rules += [
        Rule("parallelism.schedule", lambda p: np.isin(p["schedule"], allowed),
             lambda p: f"schedule {_schedule_name(p['schedule'])} is not one training.framework({framework}) runs: "
                       f"it runs {', '.join(runs)} (catalog/software.yaml)", ("schedule",)),
        Rule("parallelism.schedule", lambda p: (p["schedule"] == INTERLEAVED) == (p["virtual_stages"] > 1),
             lambda p: f"schedule {_schedule_name(p['schedule'])} with virtual_stages({p['virtual_stages']}): the "
                       "interleaved schedule is the one with more than one chunk a stage; 1f1b, zb-h1 and dualpipe "
                       "hold one (virtual_stages 1)", ("schedule", "virtual_stages")),
        Rule("parallelism.schedule", lambda p: ((p["schedule"] != ZB_H1) & (p["schedule"] != DUALPIPE)) | (p["pp"] > 1),
             lambda p: f"schedule {_schedule_name(p['schedule'])} needs a pipeline, got pp({p['pp']})",
             ("schedule", "pp")),
        Rule("parallelism.schedule",
             lambda p: (p["schedule"] != DUALPIPE) | (_divides(2, p["pp"]) & _divides(2, per_schedule(p))
                                                       & (per_schedule(p) >= 2 * p["pp"])),
             lambda p: f"DualPipe sends half the micro-batches in from each end of the pipeline: it needs an even "
                       f"pp({p['pp']}) and an even m = global_batch({gb}) / (dp({p['dp']}) * "
                       f"micro_batch({p['micro_batch']})){flushed} = {per_schedule(p)} of at least 2 * pp "
                       "(deepseek-ai/DualPipe dualpipe.py DualPipe.step)", ("schedule", "pp", "dp", "micro_batch")),
    ]
    if model.moe:
        rules.append(Rule(
            "parallelism.sequence_parallel", lambda p: (p["tp"] == 1) | np.asarray(p["sp"], dtype=bool),
            lambda p: f"a mixture-of-experts model with tp({p['tp']}) > 1 needs sequence parallelism "
                      "(Megatron-Core MoELayer.forward)", ("tp", "sp")))
    else:
        rules.insert(0, Rule("parallelism.ep", lambda p: p["ep"] == 1,
                             lambda p: f"ep({p['ep']}) > 1 needs a mixture-of-experts model", ("ep",)))
    if training.optimizer_in_backward:
        rules.append(Rule(
            "training.optimizer_in_backward", lambda p: (microbatches(p) == 1) & (p["pp"] == 1),
            lambda p: f"the optimizer in the backward steps each parameter as its gradient arrives: it needs one "
                      f"micro-batch a step and no pipeline, got m = {microbatches(p)}, pp({p['pp']}) (torchtune "
                      "full_finetune recipes refuse gradient accumulation with optimizer_in_bwd)",
            ("dp", "micro_batch", "pp")))
    layout = training.pipeline_layout
    if layout is not None:  # the run places the layers itself (Megatron-Core pipeline_parallel_layout.py)
        n_chunks, placed = len(expand_layout(layout)), transformer_layers(layout)
        rules.append(Rule("training.pipeline_layout", lambda p: p["pp"] * p["virtual_stages"] == n_chunks,
                          lambda p: f"the layout has {n_chunks} chunks, one per pipeline rank and virtual stage: "
                                    f"pp({p['pp']}) * virtual_stages({p['virtual_stages']}) = "
                                    f"{p['pp'] * p['virtual_stages']}", ("pp", "virtual_stages")))
        rules.append(Rule("training.pipeline_layout", lambda p: placed == L,
                          lambda p: f"the layout places {placed} transformer layers ('t'), the model has {L}", ()))
    if not uneven_pipeline and layout is None:
        # the split counts the embedding and the loss as layers where the run says so (Megatron-Core
        # transformer_block.get_num_layers_to_build: 'num_layers should be divisible by pipeline_model_parallel_size'
        # after adding them); a single stage splits nothing
        def split(p: dict[str, Any]) -> Any:
            e, lo = pipeline_accounting(training, p["pp"])
            return L + e + lo

        def counted(p: dict[str, Any]) -> str:
            e, lo = (bool(np.any(x)) for x in pipeline_accounting(training, p["pp"]))
            return (f"layers({L}) + the embedding and the loss counted as layers" if e and lo else
                    f"layers({L}) + the embedding counted as a layer" if e else
                    f"layers({L}) + the loss counted as a layer" if lo else f"layers({L})")

        rules.append(Rule("parallelism.pp", lambda p: _divides(p["pp"], split(p)),
                          lambda p: f"pp({p['pp']}) does not divide {counted(p)} "
                                    "(set parallelism.uneven_pipeline: true to allow it)", ("pp",)))
        rules.append(Rule("parallelism.virtual_stages",
                          lambda p: _divides(p["pp"] * p["virtual_stages"], split(p)),
                          lambda p: f"pp({p['pp']}) * virtual_stages({p['virtual_stages']}) does not divide "
                                    f"{counted(p)}", ("pp", "virtual_stages")))
    return rules


def violations(rules: list[Rule], given: dict[str, Any]) -> list[tuple[str, str]]:
    """(field, message) for every rule whose inputs are all given and that does not hold."""
    out = []
    for rule in rules:
        if all(given.get(k) is not None for k in rule.needs) and not bool(rule.ok(given)):
            out.append((rule.field, rule.message(given)))
    return out


def feasible_mask(rules: list[Rule], arrays: dict[str, np.ndarray]) -> np.ndarray:
    """Boolean mask over candidate arrays: True where every rule whose degrees are all present holds (a partial
    set of columns prunes with the rules it can already check). Rules that need no degree are the scenario's own,
    checked when it is loaded, not a property of a candidate."""
    size = len(next(iter(arrays.values())))
    mask = np.ones(size, dtype=bool)
    for rule in rules:
        if rule.needs and all(k in arrays for k in rule.needs):
            mask &= np.asarray(rule.ok(arrays), dtype=bool)
    return mask
