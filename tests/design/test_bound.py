"""The bound the design search prunes with cannot be cheated: no configuration trains faster than the run's model
FLOPs at its GPUs' dense peak, whatever the accelerator, model, count, precision or fabric."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from supercluster.design.evaluate import bound_time_s
from supercluster.search.plan import best_step
from supercluster.spec.load import build_scenario


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(accelerator=st.sampled_from(["H100-SXM5-80GB", "A100-SXM4-80GB", "B200", "MI300X", "H200"]),
       model=st.sampled_from(["llama3-8b", "mixtral-8x7b", "llama2-70b"]),
       num_gpus=st.sampled_from([16, 48, 64, 96, 128]),
       precision=st.sampled_from(["bf16", "fp8"]),
       fabric=st.sampled_from(["spectrum-x", "ethernet", "quantum-2-ndr"]),
       seq_len=st.sampled_from([2048, 8192]))
def test_no_configuration_beats_the_peak_bound(accelerator: str, model: str, num_gpus: int, precision: str,
                                               fabric: str, seq_len: int) -> None:
    """The fastest configuration (fitting or not) takes at least the bound."""
    assume(not (accelerator == "A100-SXM4-80GB" and precision == "fp8"))  # no fp8 units: refused by the rules
    s = build_scenario({"cluster": {"base": "colossus", "accelerator": accelerator, "num_gpus": num_gpus,
                                    "fabric": fabric, "host_power": None},
                        "model": model,
                        "training": {"tokens": 1.0e11, "global_batch": 192, "seq_len": seq_len,
                                     "precision": precision}}, base_dir=Path("."))
    step, _ = best_step(s, require_fit=False)
    assert bound_time_s(s) <= step.time_to_train_s
