"""Input a user wrote (or was sent) that must be refused in one located line, exit 2: alias bombs, oversized or
repeated keys, values of the wrong type, runs the hardware cannot do, and calibration blocks that do not fit."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from supercluster import FileFormatError, InputError, SpecError, build_scenario
from supercluster.spec import catalog, load, safe_yaml
from supercluster.spec.base import MAX_CLAIMS, MAX_NAME_CHARS
from supercluster.spec.calibration import (
    CollectiveRamps,
    NcclLatencies,
    default_calibration,
    load_calibration,
    shipped_document,
)
from supercluster.spec.training import resolved_fp8_recipe

SMALL = """\
name: small
cluster: {base: llama3-16k, num_gpus: 64}
model: llama3-8b
training:
  tokens: 1.0e+12
  global_batch: 256
  seq_len: 8192
"""
BASE: dict[str, Any] = {
    "name": "small",
    "cluster": {"base": "llama3-16k", "num_gpus": 64},
    "model": "llama3-8b",
    "training": {"tokens": 1.0e12, "global_batch": 256, "seq_len": 8192},
}
A100 = {**BASE, "cluster": {"base": "gpt4-a100", "num_gpus": 64}}

# 9 levels of 9 aliases each: ~3.9e8 strings once expanded, from 342 bytes
BILLION_LAUGHS = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8))


def _file(tmp_path: Path, text: str, name: str = "scenario.yaml") -> Path:
    f = tmp_path / name
    f.write_text(text, encoding="utf-8")
    return f


# --- bounds on what a file may expand to -------------------------------------------------------------------------

def test_alias_bomb_is_refused_at_once(cli, tmp_path: Path) -> None:
    """A few hundred bytes of nested aliases are refused before they are expanded: exit 2, one line."""
    f = _file(tmp_path, SMALL + BILLION_LAUGHS)
    start = time.process_time()
    cli("plan", str(f)).one_error_line(f"{f}: ", "aliases", "2,000,000 values")
    assert time.process_time() - start < 30  # a safeguard against a hang, not a timing assertion


def test_recursive_alias_and_deep_nesting_are_refused(tmp_path: Path) -> None:
    """An alias inside the node it names, and lists nested beyond MAX_DEPTH, are located refusals."""
    with pytest.raises(FileFormatError, match="names a node that contains it"):
        load.read_data_file(_file(tmp_path, SMALL + "x: &x [1, *x]\n"))
    deep = "[" * (safe_yaml.MAX_DEPTH + 2) + "]" * (safe_yaml.MAX_DEPTH + 2)
    with pytest.raises(FileFormatError, match=f"nested more than {safe_yaml.MAX_DEPTH} levels"):
        load.read_data_file(_file(tmp_path, SMALL + f"x: {deep}\n"))
    for depth in (safe_yaml.MAX_DEPTH + 2, 100_000):  # within and beyond what json's parser follows
        with pytest.raises(FileFormatError, match=f"nested more than {safe_yaml.MAX_DEPTH} levels"):
            load.read_data_file(_file(tmp_path, '{"a": ' + "[" * depth + "]" * depth + "}", "deep.json"))


def test_legitimate_anchors_still_load(tmp_path: Path) -> None:
    """A scenario sharing a value through an anchor and a '<<' merge (overriding one of its keys) loads."""
    text = SMALL + """\
claims:
  - &claim {claim: "a figure", metric: num_gpus, low: 64, high: 64, source: &src "a paper"}
  - {<<: *claim, metric: params, low: 1.0e+9, high: 9.0e+9, source: *src}
"""
    s = load.load_scenario(_file(tmp_path, text))
    assert [c.metric for c in s.claims] == ["num_gpus", "params"]
    assert s.claims[1].source == "a paper"


def test_oversized_file_is_refused_before_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file larger than the bound is refused by its size, naming both."""
    monkeypatch.setattr(load, "MAX_INPUT_BYTES", 1000)
    f = _file(tmp_path, SMALL + "description: " + "x" * 2000 + "\n")
    with pytest.raises(FileFormatError, match=r"is 2,1\d\d bytes; supercluster reads files of at most 1,000"):
        load.read_data_file(f)


def test_huge_name_is_refused_in_one_short_line(cli, tmp_path: Path) -> None:
    """A 1 MB name is refused at load, and the error line does not repeat it."""
    f = _file(tmp_path, SMALL.replace("name: small", "name: " + "n" * 1_000_000))
    line = cli("plan", str(f)).one_error_line(f"{f}: name: ", f"at most {MAX_NAME_CHARS} characters")
    assert len(line) < 400, len(line)


def test_too_many_claims_are_refused() -> None:
    """More claims than MAX_CLAIMS is one located error (150,000 took the text report over a minute)."""
    claim = {"claim": "c", "metric": "num_gpus", "low": 1, "high": 2, "source": "s"}
    with pytest.raises(SpecError, match=f"at most {MAX_CLAIMS} items") as err:
        build_scenario({**BASE, "claims": [claim] * (MAX_CLAIMS + 1)}, file="f.yaml")
    assert err.value.field == "claims"
    assert len(str(err.value)) < 300
    assert len(build_scenario({**BASE, "claims": [claim] * MAX_CLAIMS}).claims) == MAX_CLAIMS


def test_a_set_value_is_bounded_too() -> None:
    """A --set value goes through the same YAML bounds."""
    with pytest.raises(InputError, match="aliases"):
        build_scenario(BASE, overrides=["description=" + "{" + BILLION_LAUGHS.replace("\n", ", ") + "}"])


def test_oversized_hf_config_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Hugging Face config.json larger than the bound is refused by its size too."""
    from supercluster.spec import hf, hf_config

    monkeypatch.setattr(hf_config, "MAX_INPUT_BYTES", 10)
    config = Path(__file__).parents[1] / "data" / "hf" / "DeepSeek-V3" / "config.json"
    with pytest.raises(FileFormatError, match="supercluster reads files of at most 10"):
        hf.model_from_hf_config(config)


# --- repeated keys ----------------------------------------------------------------------------------------------

def test_repeated_key_in_a_scenario_names_the_key_and_both_lines(cli, tmp_path: Path) -> None:
    """A key given twice in a scenario (YAML keeps the last) is refused with the key and both lines."""
    f = _file(tmp_path, SMALL + "  global_batch: 512\n")
    cli("plan", str(f)).one_error_line(f"{f}: training.global_batch: ", "'global_batch'", "lines 6 and 8")


def test_repeated_key_in_flow_style_and_json_is_refused(tmp_path: Path) -> None:
    """A repeated key on one line (flow style) and in a JSON object are refused too."""
    with pytest.raises(FileFormatError, match="'num_gpus' is given twice on line 2"):
        load.read_data_file(_file(tmp_path, SMALL.replace("num_gpus: 64}", "num_gpus: 64, num_gpus: 8}")))
    with pytest.raises(FileFormatError, match="'model' is given twice"):
        load.read_data_file(_file(tmp_path, '{"model": "llama3-8b", "model": "llama3-70b"}', "s.json"))


def test_a_date_that_names_no_day_is_a_located_error(cli, tmp_path: Path) -> None:
    """PyYAML raises a bare ValueError on a timestamp with month 13: a scenario with one, and the same value by
    --set, are one located line each (exit 2), and a real date loads."""
    f = _file(tmp_path, SMALL + "  software_date: 2025-13-40\n")
    cli("plan", str(f)).one_error_line(f"{f}: ", "'2025-13-40' is not a date", "line 8")
    ok = _file(tmp_path, SMALL, "ok.yaml")
    cli("plan", str(ok), "--set", "training.software_date=2025-13-40").one_error_line(
        "training.software_date", "month")
    assert str(load.load_scenario(ok, ["training.software_date=2025-04-01"]).training.software_date) == "2025-04-01"


def test_repeated_key_in_a_calibration_file_is_refused(tmp_path: Path) -> None:
    """A calibration file a user passes gets the same check."""
    text = yaml.safe_dump(shipped_document(), sort_keys=False)
    text = text.replace("calibration:\n", "calibration:\n  matmul_scale: {value: 0.5}\n", 1)
    f = _file(tmp_path, text, "cal.yaml")
    with pytest.raises(FileFormatError, match="'matmul_scale' is given twice, at lines 2 and "):
        load_calibration(str(f))


# --- strict types ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "shown"), [(True, "True"), ("2048", "'2048'"), (2048.5, "2048.5")])
def test_a_number_field_takes_a_number(value: Any, shown: str) -> None:
    """`global_batch: true` is not 1, `"2048"` is not 2048: the wrong type is one located error."""
    with pytest.raises(SpecError, match="valid integer") as err:
        build_scenario({**BASE, "training": {**BASE["training"], "global_batch": value}}, file="f.yaml")
    assert err.value.field == "training.global_batch"
    assert shown in str(err.value)


def test_bool_is_not_a_float_nor_a_calibration_knob() -> None:
    """true is refused where a float is expected, in a spec and in a calibration override."""
    with pytest.raises(SpecError, match="training.tokens"):
        build_scenario({**BASE, "training": {**BASE["training"], "tokens": True}})
    with pytest.raises(SpecError, match="calibration"):
        build_scenario({**BASE, "calibration": {"ep_comm_overlap": True}})


def test_set_overrides_and_exponents_still_parse(tmp_path: Path) -> None:
    """--set of an integer and a float works; `15e12` (an exponent without a dot or sign, a string in YAML 1.1) is
    the number it reads as everywhere else."""
    s = load.load_scenario(_file(tmp_path, SMALL.replace("1.0e+12", "15e12")),
                           overrides=["training.global_batch=4096", "training.tokens=2e12"])
    assert s.training.global_batch == 4096 and isinstance(s.training.global_batch, int)
    assert s.training.tokens == 2e12
    assert load.load_scenario(tmp_path / "scenario.yaml").training.tokens == 15e12


# --- rules of the run ------------------------------------------------------------------------------------------

def test_fp8_on_a100_is_refused_naming_what_runs(cli, tmp_path: Path) -> None:
    """fp8 on an accelerator whose catalog entry has no fp8 peak (A100): refused, saying which precisions run."""
    f = _file(tmp_path, yaml.safe_dump(A100))
    cli("plan", str(f), "--set", "training.precision=fp8").one_error_line(
        f"{f}: training.precision: ", "A100-SXM4-40GB has no fp8 units", "train in bf16 or fp16")
    assert build_scenario({**A100, "training": {**A100["training"], "precision": "bf16"}})


def test_fp4_before_blackwell_is_refused_naming_what_runs(cli, tmp_path: Path) -> None:
    """NVFP4 training on H100 (no fp4 peak in its catalog entry): refused at the field, naming the precisions that
    run there; on GB200 the same file plans."""
    data = {**BASE, "cluster": {"base": "llama3-16k", "num_gpus": 64},
            "training": {**BASE["training"], "precision": "fp4"}}
    f = _file(tmp_path, yaml.safe_dump(data))
    cli("plan", str(f)).one_error_line(f"{f}: training.precision: ", "has no fp4 units", "check_nvfp4_support",
                                       "train in bf16 or fp16 or fp8")
    assert build_scenario({**data, "cluster": {"base": "llama3-16k", "num_gpus": 64, "accelerator": "GB200"}})


def test_fp8_recipe_is_refused_where_it_cannot_run(cli, tmp_path: Path) -> None:
    """An fp8 recipe named for a bf16 run, and MXFP8 on H100 (Transformer Engine check_mxfp8_support): refused at
    training.fp8_recipe; on H100 an fp8 run takes delayed or tensorwise, on GB200 mxfp8."""
    data = {**BASE, "training": {**BASE["training"], "fp8_recipe": "delayed"}}
    f = _file(tmp_path, yaml.safe_dump(data))
    cli("plan", str(f)).one_error_line(f"{f}: training.fp8_recipe: ", "scales an fp8 run's GEMM inputs",
                                       "trains in bf16")
    mx = {**BASE, "training": {**BASE["training"], "precision": "fp8", "fp8_recipe": "mxfp8"}}
    f = _file(tmp_path, yaml.safe_dump(mx), "mx.yaml")
    cli("plan", str(f)).one_error_line(f"{f}: training.fp8_recipe: ", "mxfp8 needs Blackwell",
                                       "check_mxfp8_support", "use delayed or tensorwise")
    for recipe in ("delayed", "tensorwise"):
        assert build_scenario({**mx, "training": {**mx["training"], "fp8_recipe": recipe}})
    assert build_scenario({**mx, "cluster": {"base": "llama3-16k", "num_gpus": 64, "accelerator": "GB200"}})


def test_fp8_output_proj_needs_mxfp8(cli, tmp_path: Path) -> None:
    """The LM head in fp8 (Megatron-Core fp8_output_proj) runs under MXFP8 only: refused on a bf16 run and on an fp8
    run with delayed scaling (H100's default), each at training.fp8_output_proj; accepted on GB200's MXFP8."""
    on = {**BASE, "training": {**BASE["training"], "fp8_output_proj": True}}
    f = _file(tmp_path, yaml.safe_dump(on))
    cli("plan", str(f)).one_error_line(f"{f}: training.fp8_output_proj: ", "runs the LM head under MXFP8",
                                       "trains in bf16: drop fp8_output_proj")
    fp8 = {**on, "training": {**on["training"], "precision": "fp8"}}
    f = _file(tmp_path, yaml.safe_dump(fp8), "fp8.yaml")
    cli("plan", str(f)).one_error_line(f"{f}: training.fp8_output_proj: ", "in fp8 with the delayed recipe")
    assert build_scenario({**fp8, "cluster": {"base": "llama3-16k", "num_gpus": 64, "accelerator": "GB200"}})


def test_fp8_recipe_defaults_to_transformer_engines() -> None:
    """Unstated, an fp8 run scales as Transformer Engine's get_default_fp8_recipe does: delayed on Hopper, MXFP8 on
    Blackwell; a stated recipe is kept; a 16-bit run has none."""
    fp8 = {**BASE, "training": {**BASE["training"], "precision": "fp8"}}
    on = {name: build_scenario({**fp8, "cluster": {"base": "llama3-16k", "num_gpus": 64, "accelerator": name}})
          for name in ("H100-SXM5-80GB", "GB200")}
    assert {n: resolved_fp8_recipe(s.training, s.cluster.accelerator.architecture) for n, s in on.items()} == {
        "H100-SXM5-80GB": "delayed", "GB200": "mxfp8"}
    stated = build_scenario({**fp8, "training": {**fp8["training"], "fp8_recipe": "tensorwise"}})
    assert resolved_fp8_recipe(stated.training, "hopper") == "tensorwise"
    assert resolved_fp8_recipe(build_scenario(BASE).training, "hopper") is None


def test_fp8_where_the_catalog_has_it_is_accepted() -> None:
    """Every accelerator with an fp8 peak takes an fp8 run; every one without refuses it."""
    for name, entry in catalog.entries("accelerators").items():
        has = "fp8" in entry["dense_peak_flops_per_s"]
        data = {**BASE, "cluster": {"base": "llama3-16k", "num_gpus": 64, "accelerator": name},
                "training": {**BASE["training"], "precision": "fp8"}}
        try:
            build_scenario(data)
        except SpecError as exc:
            assert not has and exc.field == "training.precision", (name, exc)
        else:
            assert has, name


def test_a_step_larger_than_the_run_is_refused(cli, tmp_path: Path) -> None:
    """global_batch * seq_len above the run's tokens (step time would exceed time to train) is refused."""
    f = _file(tmp_path, SMALL)
    cli("plan", str(f), "--set", "training.global_batch=1000000000000").one_error_line(
        f"{f}: training.global_batch: ", "global_batch(1000000000000) * seq_len(8192) = 8.192e+15 tokens",
        "tokens(1e+12)")
    exact = {**BASE, "training": {"tokens": 256.0 * 8192, "global_batch": 256, "seq_len": 8192}}
    assert build_scenario(exact).training.global_batch == 256  # exactly one step is a run


# --- calibration blocks ----------------------------------------------------------------------------------------

def test_partial_nccl_latency_override_merges_per_key() -> None:
    """Overriding one NCCL latency keeps the shipped others (it raised KeyError in the collective model)."""
    from supercluster import plan

    s = build_scenario({**BASE, "calibration": {"nccl_latency_s": {"ring_simple_net": 5.0e-5}}})
    shipped = default_calibration().nccl_latency_s
    cal = s.calibrated()
    assert cal.nccl_latency_s == {**shipped, "ring_simple_net": 5.0e-5}
    assert set(cal.nccl_latency_s) == set(NcclLatencies.model_fields)
    assert plan(s, with_reliability=False).step.step_time_s > 0


def test_misspelt_calibration_key_names_the_known_ones(cli, tmp_path: Path) -> None:
    """A misspelt algorithm under collective_ramp_bytes is refused, naming the keys it may have."""
    f = _file(tmp_path, SMALL + "calibration:\n  collective_ramp_bytes: {rign: 1.0e+6}\n")
    cli("plan", str(f)).one_error_line(f"{f}: ", "calibration.collective_ramp_bytes", "unknown key 'rign'",
                                       "known: " + ", ".join(CollectiveRamps.model_fields))
    with pytest.raises(SpecError, match="ring_ll_base: Input should be a valid number"):
        build_scenario({**BASE, "calibration": {"nccl_latency_s": {"ring_ll_base": "fast"}}})


def test_calibration_file_with_a_partial_mapping_knob_takes_the_shipped_rest(tmp_path: Path) -> None:
    """A user's calibration file giving some NCCL latencies keeps the shipped values of the others; a misspelt
    one is located in the file."""
    doc = json.loads(json.dumps(shipped_document()))
    doc["calibration"]["nccl_latency_s"]["value"] = {"tree_simple_net": 1.0e-5}
    f = _file(tmp_path, yaml.safe_dump(doc, sort_keys=False), "cal.yaml")
    cal = load_calibration(str(f))
    assert cal.nccl_latency_s == {**default_calibration().nccl_latency_s, "tree_simple_net": 1.0e-5}
    doc["calibration"]["collective_ramp_bytes"]["value"] = {"rign": 1.0}
    g = _file(tmp_path, yaml.safe_dump(doc, sort_keys=False), "cal2.yaml")
    with pytest.raises(SpecError, match="unknown key 'rign'") as err:
        load_calibration(str(g))
    assert err.value.file == str(g) and err.value.field == "calibration.collective_ramp_bytes"


# --- the parser -------------------------------------------------------------------------------------------------

@pytest.mark.skipif(not yaml.__with_libyaml__, reason="PyYAML built without libyaml")
def test_libyaml_parses_and_agrees_with_the_pure_python_parser() -> None:
    """YAML is read with libyaml's CSafeLoader where PyYAML has it, and the catalog reads the same as with the
    pure-Python SafeLoader."""
    assert issubclass(safe_yaml._Loader, yaml.CSafeLoader)
    for kind in catalog.KINDS:
        text = (Path(catalog.__file__).parents[1] / "catalog" / f"{kind}.yaml").read_text(encoding="utf-8")
        assert safe_yaml.parse_yaml(text) == yaml.safe_load(text), kind
