"""The power model from mechanisms: GPU draw between its idle floor and TDP by the step's activity, server parts,
power-supply conversion, and the ledger built on it."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from supercluster import build_scenario, plan
from supercluster.facility import facility_ledger, gpu_activity, gpu_power_w, node_power, window_activity
from supercluster.spec import catalog
from supercluster.spec.hardware import Accelerator
from supercluster.spec.load import load_cluster

ACCELERATORS = [Accelerator.model_validate(e) for e in catalog.entries("accelerators").values()]
BUSY = {"compute": 9.0, "recompute": 0.0, "tp_comm": 0.2, "cp_comm": 0.0, "ep_comm": 0.0, "pp_comm": 0.2,
        "pipeline_bubble": 0.3, "dp_comm": 0.2, "optimizer": 0.1, "offload": 0.0}


@pytest.mark.parametrize("acc", ACCELERATORS, ids=lambda a: a.name)
@given(low=st.floats(0.0, 1.0), high=st.floats(0.0, 1.0))
def test_gpu_power_rises_with_activity_within_idle_and_tdp(acc: Accelerator, low: float, high: float) -> None:
    """A GPU busier over the step never draws less, and every draw lies between its idle floor and its TDP."""
    low, high = min(low, high), max(low, high)
    p_low, p_high = gpu_power_w(acc, low), gpu_power_w(acc, high)
    floor = acc.idle_power_w if acc.idle_power_w is not None else acc.tdp_w
    assert floor <= p_low <= p_high <= acc.tdp_w
    assert gpu_power_w(acc, 1.0) == pytest.approx(acc.tdp_w)
    assert gpu_power_w(acc, 0.0) == pytest.approx(floor)


@given(parts=st.dictionaries(st.sampled_from(list(BUSY)), st.floats(0.0, 100.0), min_size=1))
def test_activity_is_a_share_of_the_step(parts: dict[str, float]) -> None:
    """Whatever the breakdown, the activity is a share in [0, 1]."""
    h100 = Accelerator.model_validate(catalog.entry("accelerators", "H100-SXM5-80GB"))
    assert 0.0 <= gpu_activity(parts, h100) <= 1.0


def test_communication_bound_step_draws_less_than_compute_bound() -> None:
    """Moving a step's time from compute to exposed communication (or the bubble) lowers the GPUs' draw; waiting on
    host copies lowers it further (the SMs idle)."""
    h100 = Accelerator.model_validate(catalog.entry("accelerators", "H100-SXM5-80GB"))
    compute = {**BUSY}
    talk = {**BUSY, "compute": 4.0, "dp_comm": 5.2}
    bubble = {**BUSY, "compute": 4.0, "pipeline_bubble": 5.3}
    copies = {**BUSY, "compute": 4.0, "offload": 5.0}
    a = {name: gpu_activity(b, h100) for name, b in (("compute", compute), ("talk", talk), ("bubble", bubble),
                                                      ("copies", copies))}
    assert a["compute"] > a["talk"] > a["copies"] and a["talk"] == pytest.approx(a["bubble"], abs=0.02)
    assert gpu_power_w(h100, a["compute"]) > gpu_power_w(h100, a["talk"]) > gpu_power_w(h100, a["copies"])
    # communication keeps the collective's 32 of 132 SMs busy: 0.24 of the way from idle to TDP
    assert gpu_activity({"dp_comm": 1.0}, h100) == pytest.approx(32 / 132)


def _run(bandwidth_bytes_per_s: float) -> Any:
    return build_scenario({
        "name": "power", "model": "llama3-8b", "facility": "generic-liquid-cooled",
        "cluster": {"base": "eos", "num_gpus": 64, "scale_out_bandwidth_per_gpu_bytes_per_s": bandwidth_bytes_per_s},
        "training": {"tokens": 1e12, "global_batch": 64, "seq_len": 8192},
        "parallelism": {"tp": 1, "pp": 1, "dp": 64, "cp": 1, "zero_stage": 1},
    })


def test_a_slower_network_lowers_the_run_s_average_power() -> None:
    """The same run on a network 100 x slower spends more of its step communicating, so its GPUs and its IT power
    average less, while its peak (every GPU computing) is the same."""
    fast, slow = _run(50e9), _run(0.5e9)
    f_fast, f_slow = (facility_ledger(s, plan(s, with_reliability=False).step) for s in (fast, slow))
    assert f_fast is not None and f_slow is not None
    assert f_slow.gpu_activity < f_fast.gpu_activity
    assert f_slow.average.gpus_w < f_fast.average.gpus_w and f_slow.average.it_w < f_fast.average.it_w
    assert f_slow.peak.gpus_w == pytest.approx(f_fast.peak.gpus_w)


@pytest.mark.parametrize("name", ["eos", "colossus", "selene", "colossus-2-gb200"])
@pytest.mark.parametrize("activity", [0.0, 0.5, 1.0])
def test_ac_input_exceeds_dc_side_by_the_supplies_efficiency(name: str, activity: float) -> None:
    """A node's AC input is its DC draw over the power supplies' efficiency, and its DC draw the sum of its parts."""
    cluster = load_cluster(name)
    node = node_power(cluster, activity)
    assert cluster.host is not None
    assert node.ac_w == pytest.approx(node.dc_w / cluster.host.psu_efficiency)
    assert node.ac_w >= node.dc_w and node.conversion_w == pytest.approx(node.ac_w - node.dc_w)
    assert node.dc_w == pytest.approx(node.gpus_w + node.host_w + node.nics_w)
    assert node.host_w == pytest.approx(sum(node.host_parts_w.values()))


def test_dgx_h100_at_full_activity_matches_measured_node_power() -> None:
    """An air-cooled DGX H100 with every GPU computing draws, at the wall, between the ~7.75 kW of compute-intensive
    training (Newkirk et al., arXiv:2506.14551) and the ~8.4 kW peak measured by Latif et al. (arXiv:2412.08602),
    under its 10.2 kW rating: an independent check of the server parts."""
    node = node_power(load_cluster("eos"), 1.0)
    assert 7_500.0 <= node.ac_w <= 8_500.0


def test_a_node_of_fewer_gpus_scales_its_server_parts_per_gpu() -> None:
    """A 4-GPU node of an 8-GPU reference server's accelerator carries half the server's parts."""
    eight = load_cluster("eos")
    four = eight.model_copy(update={"gpus_per_node": 4, "scale_up_domain_gpus": 4})
    assert node_power(four, 1.0).host_w == pytest.approx(node_power(eight, 1.0).host_w / 2)


def test_the_step_power_trace_brackets_the_average_and_swings_with_communication() -> None:
    """Over a step the draw moves between its compute level and its communication/bubble level: min <= average <=
    max, the phases last the step, a stopped job draws least; a step with no exposed communication does not swing."""
    from supercluster import load_scenario
    from supercluster.facility.power import step_power
    from supercluster.network.report import fabric_report

    run = plan(load_scenario("scenarios/memphis.yaml"), with_reliability=False)
    f = run.facility
    assert f is not None
    sp = f.step_power
    assert sp.stopped_it_w <= sp.min_it_w <= f.average.it_w <= sp.max_it_w
    assert sp.max_it_w == pytest.approx(f.peak.it_w, rel=1e-12)
    assert sum(p.seconds for p in sp.phases) == pytest.approx(run.step.step_time_s, rel=1e-9)
    assert sp.swing_it_w == pytest.approx(sp.max_it_w - sp.min_it_w) and sp.swing_it_w > 10e6  # tens of MW
    s = load_scenario("scenarios/memphis.yaml")
    flat = step_power(s.cluster, fabric_report(s.cluster), 1.2, {"compute": 1.0, "optimizer": 0.1})
    assert flat.swing_it_w == 0.0 and len(flat.phases) == 1


@given(st.floats(0.0, 5.0), st.floats(0.0, 1.0))
def test_the_step_s_host_work_draws_idle_power(optimizer_s: float, wait_s: float) -> None:
    """The host work inside the optimizer part (StepReport.host_wait_s) counts with the SMs idle, never more of it
    than the optimizer part holds; without it the activity is as before."""
    acc = Accelerator.model_validate(catalog.entry("accelerators", "H100-SXM5-80GB"))
    parts = {"compute": 1.0, "tp_comm": 0.2, "optimizer": optimizer_s}
    step = sum(parts.values())
    waited = min(wait_s, optimizer_s)
    assert gpu_activity(parts, acc, 0.0) == gpu_activity(parts, acc)
    assert gpu_activity(parts, acc, wait_s) == pytest.approx(gpu_activity(parts, acc) - waited / step)


def test_plan_counts_the_calibrated_host_work_as_a_wait() -> None:
    s = build_scenario({"name": "wait", "cluster": {"base": "eos", "num_gpus": 64}, "model": "llama2-70b",
                        "facility": "generic-liquid-cooled",
                        "training": {"tokens": 1e9, "global_batch": 64, "seq_len": 4096}})
    run = plan(s, with_reliability=False)
    assert 0.0 < run.step.host_wait_s <= run.step.breakdown["optimizer"]
    assert run.step.host_wait_s == s.calibrated(None).step_overhead_s
    assert run.facility is not None
    phases = {p.phase: p.seconds for p in run.facility.step_power.phases}
    assert phases["waiting on the host"] == pytest.approx(run.step.host_wait_s)


@given(st.floats(0.0, 1.0), st.floats(0.0, 500.0), st.floats(1.0, 500.0))
def test_a_window_the_gpus_work_part_of_draws_the_part_s_share(activity: float, busy_s: float,
                                                                window_s: float) -> None:
    """The activity over a measured window is the working activity times the share of the window the GPUs work
    (the rest idle), never more than the working activity; a window they work throughout keeps it; and the
    node's mean draw over the window is the time-weighted mean of its working and idle draws."""
    share = min(1.0, busy_s / window_s)
    assert window_activity(activity, busy_s, window_s) == pytest.approx(activity * share)
    assert window_activity(activity, 2.0 * window_s, window_s) == activity
    cluster = load_cluster("eos")
    mean = node_power(cluster, window_activity(activity, busy_s, window_s)).ac_w
    working, idle = node_power(cluster, activity).ac_w, node_power(cluster, 0.0).ac_w
    assert mean == pytest.approx(share * working + (1 - share) * idle)
