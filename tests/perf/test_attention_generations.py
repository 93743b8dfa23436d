"""Kernel generations: a run's software date picks the fused-attention kernels of that day (catalog
attention_history), and nothing else about the run moves."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import numpy as np
import pytest
import yaml
from test_step import accelerator

from supercluster import build_scenario, perf
from supercluster.errors import SpecError
from supercluster.spec.calibration import default_calibration
from supercluster.spec.hardware import Accelerator, AttentionGeneration

BLACKWELL = ("B200", "GB200", "GB300", "B300")


def _with_history(*generations: tuple[str, float]) -> Accelerator:
    acc = accelerator("H100-SXM5-80GB")
    history = [AttentionGeneration(before=date.fromisoformat(d), fraction=f, source="test") for d, f in generations]
    return acc.model_copy(update={"attention_history": history})


def test_the_oldest_generation_a_date_predates_is_taken() -> None:
    acc = _with_history(("2026-01-01", 0.30), ("2024-01-01", 0.20))  # listed out of order on purpose
    newest = acc.attention_fraction
    assert acc.attention_fraction_at(None) == newest
    assert acc.attention_fraction_at(date(2023, 6, 1)) == 0.20
    assert acc.attention_fraction_at(date(2024, 1, 1)) == 0.30  # on the day: the next generation
    assert acc.attention_fraction_at(date(2025, 12, 31)) == 0.30
    assert acc.attention_fraction_at(date(2026, 1, 1)) == newest
    assert accelerator("A100-SXM4-80GB").attention_fraction_at(date(2020, 1, 1)) == \
        accelerator("A100-SXM4-80GB").attention_fraction  # one generation


HOPPER = ("H100-SXM5-80GB", "H800-SXM5-80GB", "H200", "H100-PCIe")


@pytest.mark.parametrize("name", HOPPER)
def test_hopper_runs_cudnn_attention_unless_the_software_chose_flash_attn(name: str) -> None:
    """Hopper (catalog attention_note): cuDNN's fused attention, Transformer Engine's choice from v1.2 (2023-12-15),
    is the default and 'fused'; the flash-attn package (FlashAttention-2) runs slower, whatever the date, and is what
    TE chose before v1.2."""
    acc = accelerator(name)
    cudnn, flash = acc.attention_fraction, acc.flash_attention_fraction
    assert flash is not None and 0.25 < flash < cudnn
    for day in (None, date(2024, 7, 1), date(2026, 1, 1)):
        assert acc.attention_fraction_at(day) == acc.attention_fraction_at(day, "fused") == cudnn
        assert acc.attention_fraction_at(day, "flash") == acc.attention_fraction_at(day, "flex") == flash
    assert acc.attention_fraction_at(date(2023, 12, 14)) == flash
    assert acc.attention_fraction_at(date(2023, 12, 15)) == cudnn


def test_a_part_without_a_flash_attn_figure_runs_its_own_kernels_under_flash() -> None:
    acc = accelerator("GB200")
    assert acc.flash_attention_fraction is None
    assert acc.attention_fraction_at(None, "flash") == acc.attention_fraction_at(None, "flex") == acc.attention_fraction
    assert acc.attention_fraction_at(date(2025, 4, 1), "flash") == acc.attention_fraction_at(date(2025, 4, 1))


def test_flash_attn_slows_the_attention_of_a_hopper_step_and_nothing_else() -> None:
    """On H100 the flash-attn package's kernels lengthen the attention core by the fractions' ratio; the GEMMs,
    memory and communication are the same run's."""
    def report(backend: str) -> Any:
        s = build_scenario({"name": "h100", "cluster": {"base": "eos", "num_gpus": 64},
                            "model": "llama3-8b", "training": {"tokens": 1.0e12, "global_batch": 512,
                                                               "attention_backend": backend}})
        return perf.evaluate(s, CAND, default_calibration()), s
    (auto, s), (flash, _) = report("auto"), report("flash")
    assert np.all(flash.step_time_s > auto.step_time_s)
    np.testing.assert_array_equal(flash.memory.total_bytes, auto.memory.total_bytes)
    np.testing.assert_array_equal(flash.parts["optimizer"], auto.parts["optimizer"])
    acc = s.cluster.accelerator
    assert acc.flash_attention_fraction is not None
    ratio = acc.attention_fraction / acc.flash_attention_fraction
    compute = auto.parts["compute"] + auto.parts["recompute"]
    grown = flash.parts["compute"] + flash.parts["recompute"] - compute
    assert np.all(grown > 0) and np.all(grown < (ratio - 1.0) * compute)


@pytest.mark.parametrize("name", BLACKWELL)
def test_blackwell_parts_ran_slower_attention_before_cudnn_9_17(name: str) -> None:
    """The catalog's Blackwell parts: cuDNN 9.10-9.13 kernels before 2025-12-19 (attention_history_note), a smaller
    share of the peak than the newest generation."""
    acc = accelerator(name)
    old = acc.attention_fraction_at(date(2025, 4, 1))
    assert 0.3 < old < acc.attention_fraction
    assert acc.attention_fraction_at(date(2025, 12, 18)) == old
    assert acc.attention_fraction_at(date(2025, 12, 19)) == acc.attention_fraction


def _scenario(software_date: Any = None, seq_len: int = 8192) -> Any:
    training: dict[str, Any] = {"tokens": 1.0e12, "global_batch": 512, "precision": "bf16", "seq_len": seq_len}
    if software_date is not None:
        training["software_date"] = software_date
    return build_scenario({"name": "gb200-era", "cluster": {"base": "colossus-2-gb200", "num_gpus": 64},
                           "model": "llama3-8b", "training": training})


CAND = perf.Candidates.from_columns(tp=[1, 2], pp=[1, 2], dp=[64, 16], cp=[1, 2], ep=[1, 1], etp=[1, 1],
                                    micro_batch=[1, 1], virtual_stages=[1, 1], recompute=["none", "selective"],
                                    zero_stage=[1, 1], sp=[False, True])


def test_an_older_release_pays_only_its_attention_kernels() -> None:
    """A 2025 release on GB200 takes longer than today's software, by less than the older fraction could add to all of
    the compute; the memory and the optimizer stay as they were, and no communication is more exposed."""
    cal = default_calibration()
    new, old = (perf.evaluate(_scenario(d), CAND, cal) for d in (None, "2025-04-01"))
    later = perf.evaluate(_scenario(date(2026, 2, 1)), CAND, cal)
    assert np.all(old.step_time_s > new.step_time_s)
    np.testing.assert_array_equal(later.step_time_s, new.step_time_s)
    np.testing.assert_array_equal(old.memory.total_bytes, new.memory.total_bytes)
    np.testing.assert_array_equal(old.parts["optimizer"], new.parts["optimizer"])
    for part in ("tp_comm", "cp_comm", "dp_comm", "pp_comm"):  # longer attention hides as much, or more
        assert np.all(old.parts[part] <= new.parts[part])
    assert np.any(old.parts["cp_comm"] < new.parts["cp_comm"])  # the ring exchange behind the attention core
    # the attention core grows by the fraction ratio at most: the rest of a layer's compute is unchanged
    acc = accelerator("GB200")
    ratio = acc.attention_fraction / acc.attention_fraction_at(date(2025, 4, 1))
    grown = (old.parts["compute"] + old.parts["recompute"]) - (new.parts["compute"] + new.parts["recompute"])
    assert np.all(grown > 0)
    assert np.all(grown < (ratio - 1.0) * (new.parts["compute"] + new.parts["recompute"]))


def test_a_software_date_that_is_no_date_is_a_located_error() -> None:
    with pytest.raises(SpecError, match="software_date"):
        _scenario("2025-13-01")


def _plan_file(tmp_path: Any, base: str, training: dict[str, Any]) -> Any:
    f = tmp_path / f"{base}.yaml"
    f.write_text(yaml.safe_dump({"name": base, "cluster": {"base": base, "num_gpus": 64}, "model": "llama3-8b",
                                 "training": {"tokens": 1.0e12, "global_batch": 512, **training}}))
    return f


@pytest.mark.parametrize(("base", "key", "value", "said", "fraction"), [
    ("colossus-2-gb200", "software_date", "2025-04-01", "software of 2025-04-01", 0.453),
    ("eos", "attention_backend", "flash", "the flash-attn package", 0.33),
    ("eos", "attention_backend", "flex", "FlexAttention", 0.33)])
def test_plan_says_which_kernels_a_run_was_timed_with(cli, tmp_path, base: str, key: str, value: str, said: str,
                                                      fraction: float) -> None:
    """The plan's header names the software's day, or the flash-attn package, and the attention fraction it took;
    --json holds both."""
    f = _plan_file(tmp_path, base, {key: value})
    out = cli("plan", str(f))
    assert out.code == 0 and f"{said} (attention at {fraction} of peak)" in out.out.replace("\n", " ")
    data = json.loads(cli("plan", str(f), "--json").out)["step"]
    assert (data[key], data["attention_fraction"]) == (value, fraction)


def test_an_undated_plan_takes_today_s_kernels_and_a_backend_no_framework_has_is_refused(cli, tmp_path) -> None:
    f = _plan_file(tmp_path, "colossus-2-gb200", {"software_date": "2025-04-01"})
    today = json.loads(cli("plan", str(f), "--json", "--set", "training.software_date=null").out)["step"]
    assert (today["software_date"], today["attention_fraction"]) == (None, accelerator("GB200").attention_fraction)
    bad = cli("plan", str(f), "--set", "training.attention_backend=cudnn")
    assert bad.code != 0 and "attention_backend" in bad.out + bad.err and "Traceback" not in bad.out + bad.err


def test_a_scenario_can_state_its_own_attention_for_every_date() -> None:
    """A cluster that sets attention_fraction sets the newest generation; with attention_history [] beside it, the
    fraction holds whatever the run's date."""
    def acc(extra: dict[str, Any]) -> Accelerator:
        s = build_scenario({"name": "x", "cluster": {"base": "colossus-2-gb200", "num_gpus": 64,
                                                     "accelerator": {"base": "GB200", **extra}},
                            "model": "llama3-8b", "training": {"tokens": 1.0e12, "global_batch": 512}})
        return s.cluster.accelerator
    dated = date(2025, 4, 1)
    stated = acc({"attention_fraction": 0.6})
    assert (stated.attention_fraction_at(None), stated.attention_fraction_at(dated)) == (0.6, 0.453)
    every = acc({"attention_fraction": 0.6, "attention_history": []})
    assert every.attention_fraction_at(dated) == 0.6

