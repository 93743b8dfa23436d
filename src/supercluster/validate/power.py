"""Measured energy of training runs (MLPerf Training power) → the power model's prediction inside the row's boundary.

A file of this kind has a top-level ``runs:`` list whose entries carry ``average_power_w`` and ``boundary`` (the
schema of the ``power.yaml`` section of the validation README). Each row is read the way a user would describe the
run to the tool, and predicted by the same functions that give ``plan``'s facility ledger:

- the cluster: the row's accelerator, GPUs per node and scale-out text as the collective validator reads them
  (validate/systems.py), its servers the accelerator's reference server (catalog ``server_power``); immersion
  cooling (the row's ``cooling`` text) takes the server's fans out;
- the workload: the row's benchmark as a catalog model (:data:`BENCHMARKS`) at the row's global batch, sequence
  length and precision, timed by the step model with the row's parallelism where it states one, else as the search
  picks it. LoRA fine-tuning runs as the benchmark's reference defines it (:data:`LORA`: rank 16 on the attention
  projections) in the step model's LoRA mode (workload.lora); the row says so;
- the window: the meter averages over the run's timed window (time-to-train over the RCP scaling factor MLPerf
  multiplies it by), and not all of it is training steps. Where the row states the sequences trained
  (``workload.trained_samples``) and its evaluations (``evaluations`` passes over ``eval_tokens``), the GPUs work
  the steps (the step model's time) and the evaluations (forward passes at the step's achieved FLOP rate:
  workload.flops.forward_flops_per_token) at the step's activity, and wait through the rest of the window with
  their SMs idle (facility.power.window_activity): the run's set-up inside the window, the first iteration's,
  the data loaders', the first evaluation's. A two-minute run on 512 GPUs spends a quarter of its window there
  (its nodes average 2.5-2.7 kW through two stretches of ~13 s, ~6 kW through the steps); a half-hour run
  on one node about 1%. A row without them is taken as steps throughout. Where the row states its measured
  ``timeline`` (the steady-state step and the evaluation passes, from its result logs), the steps and passes last
  that long instead of the step model's time: the power model is then scored apart from the step-time model's error
  (which the calibration and held-out sets score);
- the boundary: whole nodes at the power supplies, on the DC side or at the AC input as the row's ``boundary`` says
  (facility.power.node_power). The interconnect of an MLPerf row is the submitter's constant estimate
  (``interconnect_power_w``), an input and not a measurement: it is shown beside, and the score compares the
  measured node power, ``average_power_w`` - ``interconnect_power_w``, with the predicted node power.

The energy over the measured time-to-train is reported beside (predicted and measured node power x that time);
its error is the power's. Nothing here is tuned per row: every rule reads the row's text and applies to any row.
"""

from __future__ import annotations

import re
import statistics
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from ..errors import FileFormatError, SuperclusterError
from ..facility.power import gpu_activity, node_power, window_activity
from ..perf.report import StepReport
from ..search.plan import best_step
from ..spec.calibration import Calibration
from ..spec.hardware import Cluster
from ..spec.load import build_scenario
from ..spec.scenario import Scenario
from ..workload.flops import forward_flops_per_token
from .schema import POWER, check_entry
from .systems import Unmodellable, _text, describe_system
from .tolerance import GatedResult, error_summary, gate_exclusion, read_tolerance, read_validation_file

DEFAULT_POWER_FILE = Path(__file__).with_name("power.yaml")
DEFAULT_POWER_TOLERANCE: dict[str, Any] = {"metric": "average_node_power_w", "median_abs_rel_error": 0.05,
                                           "max_abs_rel_error": 0.10}
#: MLPerf Training benchmark → (catalog model, what the run trains)
BENCHMARKS: dict[str, tuple[str, Literal["pre-training", "lora"]]] = {
    "gpt3": ("gpt3-175b", "pre-training"),
    "llama2_70b_lora": ("llama2-70b", "lora"),
}
_PAR_KEYS = ("tp", "pp", "dp", "cp", "ep", "virtual_stages", "micro_batch")
#: MLPerf Training llama2_70b_lora's reference adapters: r = 16 on qkv_proj and o_proj
#: (mlcommons/training llama2_70b_lora/run_llama_70B_scrolls_r16.sh: --lora_r 16 --lora_target_modules qkv_proj,o_proj)
LORA: dict[str, Any] = {"rank": 16, "targets": ["attention"]}

Meter = Literal["AC", "DC"]


class PowerRow(BaseModel):
    """One metered run against its prediction (or the reason it cannot be predicted). Watts are node power inside
    the row's boundary; ``*_total_w`` add the row's interconnect estimate."""

    model_config = ConfigDict(frozen=True)

    id: str
    meter: Meter | None
    predicted_w: float | None
    expected_w: float | None
    rel_error: float | None
    components: dict[str, float] = {}  # gpus_w, hosts_w, nics_w, conversion_w (nodes); network_w (the row's estimate)
    predicted_total_w: float | None = None
    expected_total_w: float | None = None
    predicted_energy_j: float | None = None  # node energy over the measured time-to-train
    expected_energy_j: float | None = None
    nodes: int | None = None
    gpu_activity: float | None = None  # over the measured window (the power's); the steps' is step_gpu_activity
    step_gpu_activity: float | None = None
    step_time_s: float | None = None  # the step model's step
    logged_step_time_s: float | None = None  # the run's steady-state step in its result logs (the row's timeline)
    window_s: float | None = None  # the timed run: time-to-train / the RCP scaling factor
    train_s: float | None = None  # of it, the training steps (logged where the row has a timeline, else predicted),
    # when the row states the samples trained
    eval_s: float | None = None  # and the evaluation passes (the same)
    parallelism: dict[str, Any] | None = None
    notes: list[str] = []
    error: str | None = None
    excluded: str | None = None


class PowerValidationResult(GatedResult):
    kind: str = "power"
    rows: list[PowerRow]
    by_meter: dict[str, dict[str, Any]]


# --- reading the row ---------------------------------------------------------------------------------------------


def meter_point(boundary: str) -> Meter:
    """AC input or DC side: the first of the two the row's boundary text names (it may name the other after, as
    'the same runs as the AC row')."""
    found = re.search(r"\b(ac|dc)\b", boundary.lower())
    if found is None:
        raise Unmodellable(f"the boundary does not say whether nodes were metered at the AC input or on the DC side "
                           f"({boundary[:80]!r})")
    return "AC" if found.group(1) == "ac" else "DC"


def _precision(text: str) -> str:
    found = re.search(r"\b(fp8|bf16|fp16)\b", text.lower())
    if not found:
        raise Unmodellable(f"training precision not recognised ({text!r})")
    return found.group(1)


def _number(run: dict[str, Any], key: str, *, file: str, where: str) -> float:
    value = run.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise FileFormatError(f"expected a positive number, got {value!r}", file=file, field=f"{where}.{key}")
    return float(value)


def _measured(run: dict[str, Any], *, file: str, where: str) -> tuple[float, float, float]:
    """(average power in the boundary, the interconnect estimate in it, the measured node power), or one located
    error."""
    average = _number(run, "average_power_w", file=file, where=where)
    interconnect = float(run.get("interconnect_power_w") or 0.0)
    if not interconnect < average:
        raise FileFormatError(f"interconnect_power_w ({interconnect:g}) is not below average_power_w ({average:g})",
                              file=file, field=f"{where}.interconnect_power_w")
    return average, interconnect, average - interconnect


def _cluster(run: dict[str, Any], notes: list[str]) -> tuple[Cluster, int]:
    """The row's machine (its servers the accelerator's reference server, fans out under immersion) and its nodes."""
    c = run.get("cluster") or {}
    gpus, per_node = c.get("num_gpus"), c.get("gpus_per_node")
    if gpus is None:
        raise Unmodellable("number of GPUs not published (cluster.num_gpus)")
    system = {"id": run.get("id"), "source": None,
              "system": {"gpu": c.get("accelerator"), "gpus_per_node": per_node, "nic": c.get("scale_out"),
                         "fabric": c.get("scale_out")},
              "num_gpus": gpus, "num_nodes": c.get("nodes")}
    described = describe_system(system)
    notes.extend(n for n in described.notes if not n.startswith("one node"))
    cluster = described.cluster
    server = cluster.accelerator.server_power
    if server is None:
        raise Unmodellable(f"no reference server for {cluster.accelerator.name} in the catalog (server_power)")
    notes.append(f"servers: the {cluster.accelerator.name} reference server's parts (catalog server_power); "
                 f"the row's CPUs ({_text(c.get('cpu')) or 'not stated'}) and memory "
                 f"({_text(c.get('host_memory_per_node')) or 'not stated'}) are not modelled")
    if "immersion" in _text(c.get("cooling")).lower():
        server = server.model_copy(update={"fans_w": 0.0})
        notes.append("immersion cooling: no server fans")
    return cluster.model_copy(update={"host_power": server}), described.nodes


def _scenario(run: dict[str, Any], cluster: Cluster, notes: list[str], *, file: str, index: int
              ) -> Scenario:
    """The row's run as a Scenario."""
    w = run.get("workload") or {}
    bench = _text(w.get("benchmark"))
    if bench not in BENCHMARKS:
        raise Unmodellable(f"benchmark {bench!r} has no model in the tool (known: {', '.join(BENCHMARKS)})")
    model, mode = BENCHMARKS[bench]
    batch, seq = w.get("global_batch_size"), w.get("seq_len")
    if batch is None or seq is None:
        raise Unmodellable("global batch or sequence length not published")
    precision = _precision(_text(w.get("precision")))
    given = run.get("parallelism") or {}
    parallelism: dict[str, Any] = {k: given[k] for k in _PAR_KEYS if given.get(k) is not None}
    if not parallelism:
        notes.append("parallelism not published: the tool's search chooses it")
    training: dict[str, Any] = {"tokens": float(batch) * float(seq), "global_batch": batch, "seq_len": seq,
                                "precision": precision}
    if mode == "lora":
        training["lora"] = LORA
        notes.append(f"LoRA fine-tuning: rank {LORA['rank']} adapters on the attention projections (the benchmark's "
                     "reference), base weights frozen")
    data = {"name": str(run.get("id", f"runs[{index}]")), "cluster": cluster, "model": model,
            "training": training, "parallelism": parallelism}
    return build_scenario(data, file=file)


def _positive(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) and value > 0 else None


def _timeline(run: dict[str, Any]) -> tuple[float | None, float | None]:
    """(the steady-state step, the evaluation passes) in s as the row's result logs time them (its ``timeline``),
    each None where the row does not state it."""
    timeline = run.get("timeline") or {}
    return _positive(timeline.get("step_time_s")), _positive(timeline.get("evaluation_s"))


def _window(run: dict[str, Any], scenario: Scenario, step: StepReport, logged: tuple[float | None, float | None],
            notes: list[str]) -> tuple[float | None, float | None, float | None]:
    """(the timed window, its training steps, its evaluation passes) in s, the latter two None when the row does not
    state the samples it trained; ``logged``: the row's _timeline, which the steps and passes take where it has
    them."""
    ttt = _positive(run.get("time_to_train_s"))
    window = ttt / (_positive(run.get("rcp_scaling_factor")) or 1.0) if ttt else None
    w = run.get("workload") or {}
    samples = _positive(w.get("trained_samples"))
    if window is None or samples is None:
        notes.append("samples trained not stated (workload.trained_samples): the measured window counted as "
                     "training steps throughout")
        return window, None, None
    measured_step, measured_eval = logged
    train = samples / scenario.training.global_batch * (measured_step or step.step_time_s)
    passes, tokens = _positive(w.get("evaluations")) or 0.0, _positive(w.get("eval_tokens")) or 0.0
    flops_per_s = step.hardware_flops_per_token * step.tokens_per_s  # the step's achieved rate, the whole cluster
    evaluation = measured_eval or \
        passes * tokens * forward_flops_per_token(scenario.model, scenario.seq_len) / flops_per_s
    notes.append("the measured window (time-to-train / RCP scaling factor): its training steps and evaluation "
                 "passes at the step's GPU activity, the rest (the run's set-up inside the window) with the SMs idle")
    if measured_step or measured_eval:
        notes.append("the steps and evaluation passes last as the run's result logs time them (timeline), not as "
                     "predicted: the power model is scored apart from the step-time model's error")
    if measured_step:
        notes.append(f"{run.get('id', 'this run')}: the step model's step {step.step_time_s:.3f} s against "
                     f"{measured_step:.3f} s in the logs ({(step.step_time_s - measured_step) / measured_step:+.0%})")
    return window, train, evaluation


def _row(run: dict[str, Any], index: int, calibration: Calibration | None, shown: str) -> PowerRow:
    rid = str(run.get("id", f"runs[{index}]"))
    where = f"runs[{index}]"
    excluded = gate_exclusion(run, file=shown, field=where)
    average, interconnect, expected = _measured(run, file=shown, where=where)
    notes: list[str] = []
    try:
        meter = meter_point(_text(run.get("boundary")))
        cluster, nodes = _cluster(run, notes)
        scenario = _scenario(run, cluster, notes, file=shown, index=index)
        step = best_step(scenario, calibration, require_fit=False)[0]
    except (Unmodellable, SuperclusterError) as exc:
        return PowerRow(id=rid, meter=None, predicted_w=None, expected_w=expected, rel_error=None, error=str(exc),
                        excluded=excluded)
    step_activity = gpu_activity(step.breakdown, cluster.accelerator, step.host_wait_s)
    logged = _timeline(run)
    window, train, evaluation = _window(run, scenario, step, logged, notes)
    activity = step_activity if window is None or train is None or evaluation is None else \
        window_activity(step_activity, train + evaluation, window)
    node = node_power(cluster, activity)
    per_node = node.ac_w if meter == "AC" else node.dc_w
    predicted = nodes * per_node
    components = {"gpus_w": nodes * node.gpus_w, "hosts_w": nodes * node.host_w, "nics_w": nodes * node.nics_w,
                  "conversion_w": nodes * node.conversion_w if meter == "AC" else 0.0, "network_w": interconnect}
    if interconnect:
        notes.append(f"interconnect: the submitter's estimate, {interconnect:,.0f} W, an input shown beside and not "
                     "scored")
    ttt_s = _positive(run.get("time_to_train_s"))
    return PowerRow(id=rid, meter=meter, predicted_w=predicted, expected_w=expected,
                    rel_error=(predicted - expected) / expected, components=components,
                    predicted_total_w=predicted + interconnect, expected_total_w=average,
                    predicted_energy_j=predicted * ttt_s if ttt_s else None,
                    expected_energy_j=expected * ttt_s if ttt_s else None, nodes=nodes, gpu_activity=activity,
                    step_gpu_activity=step_activity, step_time_s=step.step_time_s,
                    logged_step_time_s=logged[0],
                    window_s=window, train_s=train,
                    eval_s=evaluation, parallelism=step.parallelism, notes=notes, excluded=excluded)


def validate_power(path: str | Path | None = None, calibration: Calibration | None = None) -> PowerValidationResult:
    """Predict every metered run of a power file; rows that cannot be modelled count as failures, rows the file marks
    ``exclude_from_gate: reason`` are predicted and listed but left out of the statistics and the gate."""
    data, runs, shown = read_validation_file(path, DEFAULT_POWER_FILE, "runs")
    tol = read_tolerance(data, DEFAULT_POWER_TOLERANCE, ("median_abs_rel_error", "max_abs_rel_error"), shown)
    for i, run in enumerate(runs):  # every row well-formed before any is predicted (bad input: exit code 2)
        check_entry(run, POWER, file=shown, where=f"runs[{i}]", noun="run")
        _measured(run, file=shown, where=f"runs[{i}]")
        gate_exclusion(run, file=shown, field=f"runs[{i}]")
    rows = [_row(run, i, calibration, shown) for i, run in enumerate(runs)]
    gated = [r for r in rows if r.excluded is None]
    errors = [r.rel_error for r in gated if r.rel_error is not None]
    overall = error_summary(errors)
    median, worst = overall["median_abs_rel_error"], overall["max_abs_rel_error"]
    by_meter: dict[str, dict[str, Any]] = {}
    for meter in ("AC", "DC"):
        by_meter[meter] = error_summary(r.rel_error for r in gated if r.meter == meter and r.rel_error is not None)
    failures = [f"{r.id}: cannot be modelled: {r.error}" for r in gated if r.error]
    if median is not None and median > float(tol["median_abs_rel_error"]):
        failures.append(f"median |error| {median:.1%} exceeds {float(tol['median_abs_rel_error']):.0%}")
    limit = float(tol["max_abs_rel_error"])
    failures += [f"{r.id}: |error| {abs(r.rel_error):.1%} exceeds {limit:.0%}" for r in gated
                 if r.rel_error is not None and abs(r.rel_error) > limit]
    return PowerValidationResult(
        file=shown, rows=rows, median_abs_rel_error=median, max_abs_rel_error=worst,
        signed_mean_rel_error=statistics.fmean(errors) if errors else None, by_meter=by_meter, tolerance=tol,
        passed=not failures, failures=failures, excluded=len(rows) - len(gated))
