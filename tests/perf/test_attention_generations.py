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
    assert accelerator("H100-SXM5-80GB").attention_fraction_at(date(2020, 1, 1)) == newest  # one generation


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


def test_plan_says_which_kernels_a_dated_run_was_timed_with(cli, tmp_path) -> None:
    """The plan's header names the software's day and the attention fraction it took; --json holds both (an undated
    run: today's fraction, no date)."""
    f = tmp_path / "gb200-2025.yaml"
    f.write_text(yaml.safe_dump({"name": "gb200-2025", "cluster": {"base": "colossus-2-gb200", "num_gpus": 64},
                                 "model": "llama3-8b", "training": {"tokens": 1.0e12, "global_batch": 512,
                                                                    "software_date": "2025-04-01"}}))
    out = cli("plan", str(f))
    assert out.code == 0 and "software of 2025-04-01 (attention at 0.453 of peak)" in out.out.replace("\n", " ")
    data = json.loads(cli("plan", str(f), "--json").out)["step"]
    assert (data["software_date"], data["attention_fraction"]) == ("2025-04-01", 0.453)
    today = json.loads(cli("plan", str(f), "--json", "--set", "training.software_date=null").out)["step"]
    assert (today["software_date"], today["attention_fraction"]) == (None, accelerator("GB200").attention_fraction)


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
