"""A published memory measurement read the way a user would describe the run: its measured quantities classified
(what torch or nvidia-smi counted, in bytes), its framework, model shape, parallel degrees, precision, optimizer,
recompute and sharding — from the row's fields and, for Megatron-LM runs, its command-line arguments. Anything a row
does not state is taken as the software it names does by default, and said in the row's notes
(supercluster.validate.memory predicts the case and compares)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from ..spec import catalog
from ..spec.hardware import Accelerator
from ..spec.layout import expand_layout
from ..spec.load import validate_part
from ..spec.model import Model
from ..spec.training import RECOMPUTE_MODULES, SELECTIVE_DEFAULT
from ..workload.memory import OFFLOAD_ACTIVATIONS
from ..workload.software import Framework, SoftwareChoices
from .schema import as_date
from .systems import Unmodellable, _text, match_accelerator

GIB = 2.0**30
MIB = 2.0**20

Metric = Literal["peak_allocated", "allocated_after_step", "device_used", "states", "activations",
                 "activation_ratio", "runtime", "outcome"]


def _lower(value: Any) -> str:
    return _text(value).lower()


def _int(value: Any) -> int | None:
    """An integer from a number or from text such as '250k (stated ...)' or '... pads to 250880'."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return int(value) if value > 0 else None
    text = str(value).lower().replace(",", "")
    padded = re.search(r"pads? to (\d+)", text)
    if padded:
        return int(padded.group(1))
    m = re.search(r"(\d+(?:\.\d+)?)\s*(k\b)?", text)
    if not m:
        return None
    return int(float(m.group(1)) * (1000 if m.group(2) else 1))


def classify_quantity(quantity: str, unit: Any) -> tuple[Metric, str | None] | None:
    """(metric, mode) of a measured quantity's text, or None when it is not a measurement of the run."""
    q = quantity.lower()
    if "estimated" in q:
        return None  # another tool's estimate, not a measurement
    if q.strip() == "outcome":
        return "outcome", None
    rel = re.search(r"relative to .*\(mode=(\w+)\)", q)
    if rel:
        return "activation_ratio", rel.group(1)
    if "current allocated" in q or "after the last logged step" in q:
        return "allocated_after_step", None
    if "par_opt" in q or "weights+gradients+optimizer" in q or "weights+grads+optimizer" in q:
        return "states", None
    if '("act")' in q or "activation memory per gpu" in q or "real act" in q:
        return "activations", None
    if "context" in q or "first cuda op" in q or "non-pytorch" in q:
        return "runtime", None
    if "nvidia-smi" in q:
        return "device_used", None
    if "peak allocated" in q or "peak memory active" in q or "peak_memory_actual" in q or "max_memory_allocated" in q:
        return "peak_allocated", None
    return None


def to_bytes(value: Any, unit: Any) -> tuple[float, str | None]:
    """(bytes, a note on how an ambiguous unit was read)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise Unmodellable(f"measured value {value!r} is not a number") from None
    u = _lower(unit)
    if u == "bytes" or u == "b":
        return v, None
    if u.startswith("mib"):
        return v * MIB, None
    if u.startswith("gib"):
        return v * GIB, None
    if "gb" in u:
        return v * GIB, f"'{unit}' read as GiB (the figure's tool divides by 2^30)"
    raise Unmodellable(f"unit {unit!r} not understood")


# --- the run's configuration ---------------------------------------------------------------------------------------


@dataclass
class MemoryCase:
    """A measurement's run as the memory model's inputs."""

    model: Model
    accelerator: Accelerator
    framework: Framework
    degrees: dict[str, int]
    micro_batch: int
    global_batch: int
    precision: str
    recompute: str
    selective_modules: tuple[str, ...]
    sequence_parallel: bool
    zero_stage: int
    flash_attention: bool
    stage: Literal["first", "last"]
    choices: SoftwareChoices
    offload: int = 0  # offload bits (perf.candidates): the run's activations in host memory
    grouped_gemm: bool = False
    transformer_engine: bool = False
    tp_comm_overlap: bool = False
    extra_workspace_bytes: float = 0.0
    stage_layers: float | None = None  # transformer layers on the modelled rank when the split is uneven
    mtp_layers: int = 0  # multi-token-prediction layers on the last pipeline rank
    notes: list[str] = field(default_factory=list)


def _args(m: dict[str, Any]) -> dict[str, Any]:
    args = m.get("megatron_args")
    return {str(k).lstrip("-"): v for k, v in args.items()} if isinstance(args, dict) else {}


def detect_framework(m: dict[str, Any]) -> Framework:
    """The training software a measurement ran, from its arguments and text."""
    if _args(m):
        return "megatron-lm"
    text = " ".join(_lower(x) for x in (m.get("source"), m.get("training"), m.get("parallelism"), m.get("notes")))
    if "torchtune" in text or "torchtitan" in text:
        return "pytorch"
    if "deepspeed" in text:
        return "megatron-deepspeed"
    return "megatron-lm"


def _model(m: dict[str, Any], framework: Framework, tp: int, notes: list[str]) -> Model:
    spec = m.get("model")
    if not isinstance(spec, dict):
        raise Unmodellable("no model given")
    a = _args(m)

    def pick(arg: str, key: str) -> int | None:
        return _int(a.get(arg)) if a.get(arg) is not None else _int(spec.get(key))

    layers, hidden, heads = pick("num-layers", "layers"), pick("hidden-size", "hidden"), pick("num-attention-heads",
                                                                                               "heads")
    seq = pick("seq-length", "seq_len")
    missing = [n for n, v in (("layers", layers), ("hidden", hidden), ("heads", heads), ("seq_len", seq)) if not v]
    if missing:
        raise Unmodellable(f"model {', '.join(missing)} not stated")
    assert layers and hidden and heads and seq
    kv: int | None
    if a:  # Megatron-LM: query groups only with --group-query-attention, else every head its own
        kv = (_int(a.get("num-query-groups")) if a.get("group-query-attention") else None) or heads
    else:
        kv = _int(spec.get("kv_heads"))
    ffn = pick("ffn-hidden-size", "ffn_hidden")
    swiglu = bool(a.get("swiglu")) if a else "swiglu" in _lower(spec.get("notes")) or "llama" in _lower(spec.get("name"))
    if not ffn:
        ffn = int(4 * hidden * (2 / 3 if swiglu else 1)) if a else None
        if ffn is None:
            raise Unmodellable("model ffn_hidden not stated")
        notes.append(f"ffn_hidden {ffn} (Megatron-LM's default of 4h{' x 2/3 for SwiGLU' if swiglu else ''})")
    vocab = _vocab(m, a, spec, framework, tp, notes)
    body: dict[str, Any] = dict(name=str(m.get("id")), layers=layers, hidden=hidden, heads=heads, kv_heads=kv,
                                ffn_hidden=ffn, vocab=vocab, seq_len=seq,
                                activation="swiglu" if swiglu else "gelu",
                                tied_embeddings=_tied(a, spec, framework),
                                head_dim=_int(a.get("kv-channels")) if a.get("kv-channels") else None,
                                dropout=_dropout(a, framework, notes))
    if a.get("multi-latent-attention"):
        body["attention"] = "mla"
        body["mla"] = {"q_lora_rank": _int(a.get("q-lora-rank")), "kv_lora_rank": _int(a.get("kv-lora-rank")),
                       "qk_nope_head_dim": _int(a.get("qk-head-dim")),
                       "qk_rope_head_dim": _int(a.get("qk-pos-emb-head-dim")), "v_head_dim": _int(a.get("v-head-dim"))}
    moe = spec.get("moe")
    if isinstance(moe, dict) and moe:
        experts = _int(moe.get("num_experts") or moe.get("experts"))
        top_k = _int(moe.get("top_k")) or _int(a.get("moe-router-topk"))
        width = _int(moe.get("moe_ffn_hidden")) or _int(a.get("moe-ffn-hidden-size")) or ffn
        if not experts or not top_k:
            raise Unmodellable("MoE experts or top_k not stated")
        shared_width = _int(moe.get("shared_expert_ffn")) or _int(a.get("moe-shared-expert-intermediate-size"))
        freq = _text(a.get("moe-layer-freq") or moe.get("moe_layer_freq"))
        dense = re.match(r"\(\[0\]\*(\d+)\+\[1\]\*(\d+)\)", freq.replace(" ", ""))
        body["moe"] = {"experts": experts, "top_k": top_k, "moe_ffn_hidden": width,
                       "shared_experts": 1 if shared_width else 0, "dense_layers": int(dense.group(1)) if dense else 0}
        if shared_width:
            body["moe"]["shared_ffn_hidden"] = shared_width
    try:
        return Model.model_validate(body)
    except Exception as exc:  # a shape the model spec refuses
        raise Unmodellable(f"model not accepted: {str(exc).splitlines()[0]}") from None


def _tied(a: dict[str, Any], spec: dict[str, Any], framework: Framework) -> bool:
    """Whether the output layer is the input embedding: Megatron-LM ties them unless
    --untie-embeddings-and-output-weights; Megatron-DeepSpeed's GPT always does (GPTModel's output uses
    word_embeddings_weight(); GPTModelPipe builds both ends from one TiedLayerSpec('embed'), one module on a stage
    that holds both, bigscience-workshop/Megatron-DeepSpeed megatron/model/gpt_model.py); other software as the
    row's notes say."""
    if a:
        return not a.get("untie-embeddings-and-output-weights")
    notes = _lower(spec.get("notes"))
    if "untied" in notes:
        return False
    return "tied" in notes or framework in ("megatron-lm", "megatron-deepspeed")


MEGATRON_DEFAULT_DROPOUT = 0.1  # Megatron-LM --hidden-dropout and --attention-dropout defaults (arguments.py)


def _dropout(a: dict[str, Any], framework: Framework, notes: list[str]) -> float:
    """Dropout as the run's arguments set it, else the framework's default (Megatron-LM 0.1; PyTorch recipes none)."""
    if a.get("hidden-dropout") is not None:
        return float(a["hidden-dropout"])
    if framework == "pytorch":
        return 0.0
    if not a:
        notes.append("dropout not stated: Megatron-LM's default 0.1")
    return MEGATRON_DEFAULT_DROPOUT


def _vocab(m: dict[str, Any], a: dict[str, Any], spec: dict[str, Any], framework: Framework, tp: int,
           notes: list[str]) -> int:
    """The vocabulary as the framework pads it; a vocabulary the source leaves out is left out of the model."""
    vocab = _int(a.get("vocab-size")) if a.get("vocab-size") else _int(spec.get("vocab"))
    if vocab is None and a:
        tokenizer = _text(a.get("tokenizer-type") or "GPT2BPETokenizer")
        if "gpt2" in tokenizer.lower():
            vocab = 50257
            notes.append("vocab 50257 (GPT-2 BPE, Megatron-LM's default tokenizer)")
    if vocab is None:
        notes.append("vocab not stated: no embedding or output layer counted (as the source's figure)")
        return 1
    if framework in ("megatron-lm", "megatron-deepspeed"):
        multiple = (_int(a.get("make-vocab-size-divisible-by")) or 128) * tp
        padded = -(-vocab // multiple) * multiple
        if padded != vocab:
            notes.append(f"vocab {vocab} padded to {padded} (a multiple of {multiple}, Megatron-LM)")
        return padded
    return vocab


def _recompute(m: dict[str, Any], notes: list[str]) -> tuple[str, tuple[str, ...]]:
    a = _args(m)
    if a:
        gran = _lower(a.get("recompute-granularity"))
        modules = tuple(re.findall(r"[a-z_]+", _lower(a.get("recompute-modules"))))
        if gran == "full":
            if a.get("recompute-num-layers") and _int(a.get("recompute-num-layers")) != 1:
                notes.append("partial full recompute taken as full")
            return "full", ()
        if gran == "selective":
            unknown = [x for x in modules if x not in RECOMPUTE_MODULES]
            if unknown:
                raise Unmodellable(f"recompute modules {unknown} not modelled")
            return "selective", modules or tuple(SELECTIVE_DEFAULT)
        return "none", ()
    text = _lower((m.get("training") or {}).get("recompute"))
    if not text or text in ("none", "no") or text.startswith("none") or "not stated" in text:
        if "not stated" in text or not text:
            notes.append("recompute not stated: none")
        return "none", ()
    if "selective" in text:
        return "selective", ("core_attn",)
    if "full" in text or "checkpoint" in text:
        if "not restated" in text:
            notes.append("recompute not restated by the source: full (the run's final script checkpoints "
                         "activations)")
        return "full", ()
    raise Unmodellable(f"recompute {text!r} not understood")


def _zero_stage(m: dict[str, Any], notes: list[str]) -> int:
    a, par = _args(m), m.get("parallelism") or {}
    if a:
        if a.get("use-megatron-fsdp") or a.get("use-torch-fsdp2"):
            strategy = _lower(a.get("data-parallel-sharding-strategy") or "optim_grads_params")
            return {"optim": 1, "optim_grads": 2, "optim_grads_params": 3}.get(strategy, 3)
        return 1 if a.get("use-distributed-optimizer") or _lower(a.get("optimizer")) == "dist_muon" else 0
    z = par.get("zero_stage")
    text = _lower(z)
    if par.get("fsdp") is True or "fsdp" in text or "zero-3" in text:
        return 3
    if isinstance(z, int) and not isinstance(z, bool):
        return z
    if "zero-2" in text:
        return 2
    if "zero-1" in text or "distributed optimizer" in text or par.get("distributed_optimizer") is True:
        return 1
    if z is None or "zero-0" in text or "no sharding" in text:
        return 0
    raise Unmodellable(f"zero_stage {z!r} not understood")


def _precision(m: dict[str, Any], notes: list[str]) -> str:
    a = _args(m)
    if a:
        if a.get("fp8-format"):
            return "fp8"
        return "fp16" if a.get("fp16") else "bf16"
    text = _lower((m.get("training") or {}).get("precision"))
    for p in ("fp8", "fp16", "bf16"):
        if p in text:
            return p
    notes.append("precision not stated: bf16")
    return "bf16"


def _last_stage_layers(a: dict[str, Any], layers: int, deg: dict[str, int], notes: list[str]) -> float | None:
    """Transformer layers of the last pipeline rank when Megatron-LM splits them unevenly, else None."""
    pp = deg["pp"]
    if pp == 1:
        return None
    if a.get("pipeline-model-parallel-layout"):
        segments = expand_layout(str(a["pipeline-model-parallel-layout"]))
        if len(segments) % pp:
            raise Unmodellable(f"pipeline layout of {len(segments)} segments over pp {pp}")
        deg["virtual_stages"] = len(segments) // pp
        mine = segments[pp - 1::pp]
        notes.append(f"pipeline layout: the last rank holds {sum(seg.count('t') for seg in mine)} layers")
        return float(sum(seg.count("t") for seg in mine))
    last = _int(a.get("decoder-last-pipeline-num-layers"))
    if last:
        return float(last)
    if a.get("account-for-embedding-in-pipeline-split") or a.get("account-for-loss-in-pipeline-split"):
        extra = int(bool(a.get("account-for-embedding-in-pipeline-split"))) + int(
            bool(a.get("account-for-loss-in-pipeline-split")))
        per_stage = (layers + extra) / pp
        return per_stage - (1 if a.get("account-for-loss-in-pipeline-split") else 0)
    return None


def _embedding_slot_layers(m: dict[str, Any], model: Model, deg: dict[str, int]) -> float | None:
    """Transformer layers of the first pipeline rank when a DeepSpeed pipeline gives each embedding its own slot
    (PipelineModule partition_method 'type:transformer|embed': the embedding and the tied head count as layers and
    the L + 2 units are balanced over the stages, runtime/pipe/module.py _partition_layers, partition_balanced;
    BigScience: 'giving each embedding layer its own slot on par with transformer layers'): the embedding's rank
    holds one layer fewer than the fullest share of L + 2, else None."""
    text = " ".join(_lower(x) for x in (m.get("notes"), (m.get("source") or {}).get("section")))
    if deg["pp"] > 1 and ("own pipeline slot" in text or re.search(r"partition.?method.*embed", text)):
        return float(-(-(model.layers + 2) // deg["pp"]) - 1)
    return None


def _choices(text: str, *, optimizer_instances: int = 1, whole_tensor_shards: bool = False,
             deferred_output_grads: float = 0.0, graph_static_inputs: int = 0,
             software_date: date | None = None) -> SoftwareChoices:
    """What a run's own words and flags (lower case) say about its optimizer, precision and loss."""
    t = text
    pure_bf16 = "no fp32 master" in t or "states are bf16" in t
    return SoftwareChoices(
        optimizer="muon" if "muon" in t else "adafactor" if "adafactor" in t else "adam",
        state_dtype="int8" if ("8-bit" in t or "8bit" in t) else "bf16" if pure_bf16 else "fp32",
        master_weights=not pure_bf16,
        optimizer_in_backward="in backward" in t or "optimizer_in_bwd" in t or "into backward" in t,
        fp8_params="fp8-param-gather" in t or "fp8_param_gather=true" in t,
        loss="chunked" if "chunked cross-entropy=true" in t else "fused" if "cross-entropy-loss-fusion" in t
        else "eager",
        compiled="torch.compile" in t,
        bf16_optimizer_fp32_grads="fp32 grad buffer" in t, optimizer_instances=optimizer_instances,
        whole_tensor_shards=whole_tensor_shards, deferred_output_grads=deferred_output_grads,
        graph_static_inputs=graph_static_inputs, software_date=software_date)


def _values_recorded(m: dict[str, Any]) -> date | None:
    """When the row's figures were recorded, if its source says they predate the commit it cites (CI golden values
    regenerated less often than the code changes): the software of that day (SoftwareChoices.software_date)."""
    source = m.get("source")
    return as_date(source.get("values_recorded")) if isinstance(source, dict) and "values_recorded" in source \
        else None


def describe_case(m: dict[str, Any]) -> MemoryCase:
    """A measurement's run, or :class:`Unmodellable` with the reason."""
    notes: list[str] = []
    found = match_accelerator(_text(m.get("gpu")))
    if found is None:
        raise Unmodellable(f"GPU not recognised or not in the catalog (gpu: {m.get('gpu')!r})")
    acc_name, note = found
    if note:
        notes.append(note)
    accelerator = validate_part(Accelerator, {"name": acc_name, **catalog.entry("accelerators", acc_name)})
    par, tr = m.get("parallelism"), m.get("training")
    if not isinstance(par, dict) or not isinstance(tr, dict):
        raise Unmodellable("no parallelism or training given")
    a = _args(m)
    framework = detect_framework(m)
    deg: dict[str, int] = {}
    for k in ("tp", "pp", "dp", "cp", "ep", "etp", "virtual_stages"):
        deg[k] = _int(par.get(k)) or 1
    if a.get("expert-tensor-parallel-size"):
        deg["etp"] = _int(a["expert-tensor-parallel-size"]) or 1
    elif not par.get("etp"):
        deg["etp"] = deg["tp"]  # Megatron-Core: expert tensor parallelism defaults to tp
    if a.get("num-virtual-stages-per-pipeline-rank"):
        deg["virtual_stages"] = _int(a["num-virtual-stages-per-pipeline-rank"]) or 1
    elif a.get("num-layers-per-virtual-pipeline-stage"):
        layers = _int(a.get("num-layers")) or 1
        deg["virtual_stages"] = max(1, layers // (deg["pp"] * (_int(a["num-layers-per-virtual-pipeline-stage"]) or 1)))
    model = _model(m, framework, deg["tp"], notes)
    stage_layers = _last_stage_layers(a, model.layers, deg, notes) if a else _embedding_slot_layers(m, model, deg)
    mtp_layers = _int(a.get("mtp-num-layers")) or 0
    if a.get("pipeline-model-parallel-layout"):  # the layout places them: its 'm' segments on the last rank
        mtp_layers = sum(seg.count("m") for seg in expand_layout(str(a["pipeline-model-parallel-layout"]))
                         [deg["pp"] - 1::deg["pp"]])
    mb = _int(tr.get("micro_batch"))
    if not mb:
        raise Unmodellable("micro_batch not stated")
    gb = _int(tr.get("global_batch")) or mb * deg["dp"]
    recompute, modules = _recompute(m, notes)
    sp_given = par.get("sequence_parallel")
    sp = bool(a.get("sequence-parallel")) if a else sp_given is True
    if a:
        flash = _lower(a.get("attention-backend") or "auto") != "unfused" and a.get("transformer-impl") != "local"
    else:
        flash = framework == "pytorch"  # torch SDPA; 2022 Megatron-DeepSpeed and Megatron-LM had no fused attention
    stage: Literal["first", "last"] = "last" if framework == "megatron-lm" and a else "first"
    text = " ".join(_lower(x) for x in (tr.get("precision"), tr.get("optimizer"), tr.get("recompute"),
                                         tr.get("other"), par.get("zero_stage"), m.get("notes")))
    if a.get("optimizer"):
        text += f" optimizer {_lower(a['optimizer'])}"
    text += " " + " ".join(k for k in ("cross-entropy-loss-fusion", "fp8-param-gather") if a.get(k))
    # Megatron-LM runs Muon under the distributed optimizer as its LayerWiseDistributedOptimizer; without the
    # shard-aligned parameter layout it deals whole tensors to the ranks (arguments.py 1724-1736; optimizer
    # __init__.py _get_megatron_emerging_optimizer, the legacy ping-pong path)
    whole_tensors = ("muon" in _lower(a.get("optimizer")) and _zero_stage(m, notes) >= 1
                     and bool(a.get("no-use-layer-wise-param-layout")))
    deferred = 0.0
    if a.get("defer-embedding-wgrad-compute"):  # --wgrad-deferral-limit 0 (the default): every micro-batch
        deferred = float(_int(a.get("wgrad-deferral-limit")) or math.inf)
    graphed = 0
    if _lower(a.get("cuda-graph-impl")) == "transformer_engine":  # per-layer graphs (not full_iteration)
        scope = _lower(a.get("cuda-graph-modules") or a.get("cuda-graph-scope"))
        graphed = 2 if not scope or "attn" in scope else 1
    tr_other = _lower(tr.get("other"))
    if "unpacked" in tr_other or "variable length" in tr_other:
        raise Unmodellable("sequences of variable length (an unpacked dataset): the peak is set by the longest "
                           "batch, which the source does not state")
    extra = 0.0
    seq = model.seq_len
    if a and not a.get("no-create-attention-mask-in-dataloader"):
        extra += mb * seq * seq  # Megatron's data loader builds a bool [b, 1, s, s] mask by default
    if a.get("transformer-impl") == "local":
        extra += 2.0 * mb * model.heads / deg["tp"] * (seq / deg["cp"]) * seq  # the persistent score buffer
    return MemoryCase(model=model, accelerator=accelerator, framework=framework, degrees=deg, micro_batch=mb,
                      grouped_gemm=bool(a.get("moe-grouped-gemm")), extra_workspace_bytes=extra,
                      tp_comm_overlap=bool(a.get("tp-comm-overlap")),
                      transformer_engine=framework == "megatron-lm" and a.get("transformer-impl",
                                                                              "transformer_engine") != "local",
                      stage_layers=stage_layers, mtp_layers=mtp_layers,
                      global_batch=gb, precision=_precision(m, notes), recompute=recompute,
                      selective_modules=modules, sequence_parallel=sp, zero_stage=_zero_stage(m, notes),
                      flash_attention=flash, stage=stage,
                      choices=_choices(text, optimizer_instances=_int(a.get("num-distributed-optimizer-instances")) or 1,
                                       whole_tensor_shards=whole_tensors, deferred_output_grads=deferred,
                                       graph_static_inputs=graphed, software_date=_values_recorded(m)),
                      notes=notes,
                      offload=OFFLOAD_ACTIVATIONS if ("offload" in text and "activation" in text)
                      or a.get("fine-grained-activation-offloading") else 0)
