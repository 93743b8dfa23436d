"""Scenario loading: formats, catalog names, base merges, HF configs, overrides, and one located line per mistake."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

import supercluster
from supercluster import (
    CatalogNameError,
    FileFormatError,
    InfeasibleError,
    InputError,
    SpecError,
    build_scenario,
    load_scenario,
)
from supercluster.spec import catalog
from supercluster.spec.training import Parallelism

REPO = Path(__file__).resolve().parents[2]
HF = REPO / "tests" / "data" / "hf"

BASE: dict[str, Any] = {
    "name": "small",
    "cluster": {"base": "llama3-16k", "num_gpus": 64},
    "model": "llama3-8b",
    "training": {"tokens": 1.0e12, "global_batch": 256, "seq_len": 8192},
}

SMALL_YAML = """\
name: small
cluster: {base: llama3-16k, num_gpus: 64}
model: llama3-8b
training:
  tokens: 1.0e+12
  global_batch: 256
  seq_len: 8192
  precision: bf16
parallelism: {tp: 2, recompute: selective}
"""
SMALL_TOML = """\
name = "small"
model = "llama3-8b"

[cluster]
base = "llama3-16k"
num_gpus = 64

[training]
tokens = 1.0e12
global_batch = 256
seq_len = 8192
precision = "bf16"

[parallelism]
tp = 2
recompute = "selective"
"""
SMALL_JSON = """\
{
  "name": "small",
  "cluster": {"base": "llama3-16k", "num_gpus": 64},
  "model": "llama3-8b",
  "training": {"tokens": 1e12, "global_batch": 256, "seq_len": 8192, "precision": "bf16"},
  "parallelism": {"tp": 2, "recompute": "selective"}
}
"""


def _with(data: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``data`` with ``dotted`` set to ``value`` (mappings created on the way)."""
    out = copy.deepcopy(data)
    node = out
    *parents, last = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    return out


def _write(path: Path, data: dict[str, Any] | str) -> Path:
    text = data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False)
    path.write_text(text, encoding="utf-8")
    return path


# --- bad input: one located line through the CLI -----------------------------------------------------------------

# (id, scenario as a dict, the field the line must name, fragments saying what was expected)
BAD_SCENARIOS: list[tuple[str, dict[str, Any], str, list[str]]] = [
    ("unknown-key", _with(BASE, "training.tokenz", 1e12), "training.tokenz", ["unknown key"]),
    ("wrong-type", _with(BASE, "training.global_batch", "many"), "training.global_batch",
     ["valid integer", "'many'"]),
    ("zero-batch", _with(BASE, "training.global_batch", 0), "training.global_batch", ["greater than 0", "(got 0)"]),
    ("negative-gpus-inline", _with(BASE, "cluster.num_gpus", -8), "cluster.num_gpus",
     ["greater than 0", "(got -8)"]),
    ("negative-tokens", _with(BASE, "training.tokens", -1.0), "training.tokens", ["greater than 0"]),
    ("bad-literal", _with(BASE, "parallelism", {"recompute": "sometimes"}), "parallelism.recompute",
     ["'none'", "'full'", "'sometimes'"]),
    ("bad-precision", _with(BASE, "training.precision", "fp64"), "training.precision", ["'bf16'", "'fp64'"]),
    ("product", _with(BASE, "parallelism", {"tp": 8, "pp": 2, "dp": 2, "cp": 1}), "parallelism",
     ["tp(8) * pp(2) * dp(2) * cp(1) = 32 != num_gpus(64)"]),
    ("tp-heads", _with(_with(BASE, "model", "gpt3-175b"), "parallelism", {"tp": 64}), "parallelism.tp",
     ["tp(64) does not divide heads(96)"]),
    ("pp-layers", _with(BASE, "parallelism", {"pp": 3}), "parallelism.pp", ["pp(3) does not divide layers(32)"]),
    ("ep-experts", _with(_with(BASE, "model", "mixtral-8x7b"), "parallelism", {"ep": 3}), "parallelism.ep",
     ["ep(3) does not divide experts(8)"]),
    ("ep-dense", _with(BASE, "parallelism", {"ep": 2}), "parallelism.ep", ["ep(2)"]),
    ("batch", _with(_with(BASE, "training.global_batch", 96), "parallelism", {"dp": 64, "micro_batch": 1}),
     "training.global_batch", ["global_batch(96) is not divisible by dp(64) * micro_batch(1) = 64"]),
    ("partial-product", _with(BASE, "parallelism", {"tp": 8, "dp": 3}), "parallelism",
     ["tp(8) * dp(3) = 24 does not divide num_gpus(64)"]),
    ("unknown-model", _with(BASE, "model", "llama3-450b"), "model",
     ["unknown model 'llama3-450b'", "did you mean", "'llama3-405b'"]),
    ("unknown-cluster-base", _with(BASE, "cluster.base", "colosus"), "cluster",
     ["unknown cluster 'colosus'", "'colossus'"]),
    ("unknown-accelerator", _with(BASE, "cluster.accelerator", "H1000"), "cluster.accelerator",
     ["unknown accelerator 'H1000'", "H100-SXM5-80GB"]),
    ("base-not-a-name", _with(BASE, "cluster.base", 5), "cluster.base", ["'base' must be a catalog name"]),
    ("missing-training", {k: v for k, v in BASE.items() if k != "training"}, "training",
     ["required field is missing"]),
    ("model-inconsistent", _with(BASE, "model", {"base": "llama3-8b", "kv_heads": 5}), "model",
     ["kv_heads(5) must divide heads(32)"]),
    ("layer-types-length", _with(BASE, "model", {"base": "llama3-8b", "sliding_window": 4096,
                                                 "layer_types": ["sliding_attention", "full_attention"]}),
     "model", ["layer_types has 2 entries", "layers(32)"]),
    ("sliding-without-window", _with(BASE, "model", {"base": "llama3-8b",
                                                     "layer_types": ["sliding_attention"] * 32}),
     "model", ["layer_types marks 32 layers 'sliding_attention'", "sliding_window is not set"]),
    ("layer-type-unknown", _with(BASE, "model", {"base": "llama3-8b", "sliding_window": 4096,
                                                 "layer_types": ["local"] * 32}),
     "model.layer_types.0", ["'full_attention'", "'sliding_attention'", "'local'"]),
    ("zero-window", _with(BASE, "model", {"base": "llama3-8b", "sliding_window": 0}), "model.sliding_window",
     ["greater than 0"]),
]


@pytest.mark.parametrize(("data", "field", "fragments"), [case[1:] for case in BAD_SCENARIOS],
                         ids=[case[0] for case in BAD_SCENARIOS])
def test_bad_scenario_gives_one_located_line(cli, tmp_path: Path, data: dict[str, Any], field: str,
                                            fragments: list[str]) -> None:
    """A mistake in a scenario file: exit 2, one `error: FILE: FIELD: expected...` line, no traceback."""
    f = _write(tmp_path / "scenario.yaml", data)
    line = cli("plan", str(f)).one_error_line(*fragments)
    assert line.startswith(f"error: {f}: {field}: "), line


# (id, --set assignments, fragments)
BAD_OVERRIDES: list[tuple[str, list[str], list[str]]] = [
    ("no-equals", ["training.global_batch"], ["--set expects key=value", "'training.global_batch'"]),
    ("empty-key", ["=3"], ["--set expects key=value"]),
    ("through-a-number", ["training.tokens.x=1"], ["training.tokens.x", "not a mapping"]),
    ("zero-degree", ["parallelism.tp=0"], ["parallelism.tp", "greater than 0"]),
    ("unknown-key", ["cluster.gpus=8"], ["cluster.gpus", "unknown key"]),
    ("unknown-name", ["model=llama3-450b"], ["model", "'llama3-405b'"]),
    ("wrong-type", ["training.global_batch=lots"], ["training.global_batch", "'lots'"]),
]


@pytest.mark.parametrize(("overrides", "fragments"), [case[1:] for case in BAD_OVERRIDES],
                         ids=[case[0] for case in BAD_OVERRIDES])
def test_bad_override_gives_one_located_line(cli, tmp_path: Path, overrides: list[str],
                                             fragments: list[str]) -> None:
    """A bad --set: exit 2 and one error line naming the scenario file and the key."""
    f = _write(tmp_path / "scenario.yaml", BASE)
    args = [arg for assignment in overrides for arg in ("--set", assignment)]
    cli("plan", str(f), *args).one_error_line(str(f), *fragments)


# (id, file name, file text, fragments)
BAD_FILES: list[tuple[str, str, str | bytes, list[str]]] = [
    ("malformed-yaml", "scenario.yaml", "name: small\ntraining: {tokens: 1\n", ["malformed YAML", "line"]),
    ("yaml-tab", "scenario.yaml", "name: small\n\tmodel: llama3-8b\n", ["malformed YAML"]),
    ("malformed-json", "scenario.json", '{"model": "llama3-8b",}', ["malformed JSON at line 1"]),
    ("malformed-toml", "scenario.toml", "model = \n", ["malformed TOML"]),
    ("yaml-list", "scenario.yaml", "- model\n- cluster\n", ["expected a mapping at the top level", "list"]),
    ("empty-file", "scenario.yaml", "", ["expected a mapping at the top level"]),
    ("json-scalar", "scenario.json", "42", ["expected a mapping at the top level", "int"]),
    ("not-utf8", "scenario.yaml", b"name: \xff\xfe\x00\n", ["cannot read file", "UnicodeDecodeError"]),
]


@pytest.mark.parametrize(("name", "text", "fragments"), [case[1:] for case in BAD_FILES],
                         ids=[case[0] for case in BAD_FILES])
def test_unparsable_file_gives_one_located_line(cli, tmp_path: Path, name: str, text: str | bytes,
                                                fragments: list[str]) -> None:
    """A scenario file that cannot be parsed: exit 2 and one error line naming the file and the problem."""
    f = tmp_path / name
    if isinstance(text, bytes):
        f.write_bytes(text)
    else:
        f.write_text(text, encoding="utf-8")
    cli("plan", str(f)).one_error_line(f"error: {f}: ", *fragments)


def test_missing_file(cli, tmp_path: Path) -> None:
    """A scenario path that does not exist: exit 2, `error: PATH: file not found`."""
    f = tmp_path / "absent.yaml"
    assert cli("plan", str(f)).one_error_line() == f"error: {f}: file not found"


def test_directory_instead_of_file(cli, tmp_path: Path) -> None:
    """A directory given as the scenario: exit 2, one line saying the file cannot be read."""
    cli("plan", str(tmp_path)).one_error_line(f"error: {tmp_path}: cannot read file")


def test_library_errors_carry_file_and_field(tmp_path: Path) -> None:
    """load_scenario raises the InputError subclass for each kind of mistake, with .file and .field set."""
    f = _write(tmp_path / "s.yaml", _with(BASE, "training.tokenz", 1))
    with pytest.raises(SpecError) as spec:
        load_scenario(f)
    assert (spec.value.file, spec.value.field) == (str(f), "training.tokenz")

    f = _write(tmp_path / "s.yaml", _with(BASE, "model", "llama3-450b"))
    with pytest.raises(CatalogNameError) as name:
        load_scenario(f)
    assert (name.value.file, name.value.field) == (str(f), "model")

    f = _write(tmp_path / "s.json", "{")
    with pytest.raises(FileFormatError) as fmt:
        load_scenario(f)
    assert fmt.value.file == str(f)
    for exc in (spec.value, name.value, fmt.value):
        assert isinstance(exc, InputError) and exc.exit_code == 2 and "\n" not in str(exc)


def test_unknown_key_suggests_the_nearest_key(cli, tmp_path: Path) -> None:
    """A misspelt key names the valid key it was probably meant to be."""
    f = _write(tmp_path / "scenario.yaml", _with(BASE, "training.tokenz", 1e12))
    cli("plan", str(f)).one_error_line("training.tokenz", "'tokens'")


def test_no_candidate_configuration_is_an_infeasible_error(cli, tmp_path: Path) -> None:
    """Fixed degrees that leave no configuration (pp would be 64 > 32 layers) give exit 2 and one line."""
    f = _write(tmp_path / "scenario.yaml", _with(BASE, "parallelism", {"tp": 1, "cp": 1, "dp": 1}))
    cli("plan", str(f)).one_error_line(f"error: {f}: parallelism: no parallel configuration",
                                       "with the given tp 1, dp 1, cp 1")
    with pytest.raises(InfeasibleError):
        supercluster.plan(load_scenario(f))


@pytest.mark.parametrize("assignment", ["training.tokens=.inf", "cluster.fabric.link_latency_s=.inf"])
def test_infinite_quantities_are_rejected(cli, tmp_path: Path, assignment: str) -> None:
    """An infinite size or time is a located input error (exit 2), not a result or a traceback."""
    f = _write(tmp_path / "scenario.yaml", _with(BASE, "cluster", "llama3-16k"))
    result = cli("plan", str(f), "--set", "cluster.num_gpus=64", "--set", assignment)
    result.one_error_line(assignment.partition("=")[0])


# --- Hugging Face configs named by a scenario ----------------------------------------------------------------------


def _hf_copy(tmp_path: Path, name: str) -> Path:
    target = tmp_path / "hf" / name / "config.json"
    target.parent.mkdir(parents=True)
    shutil.copy(HF / name / "config.json", target)
    return target


def test_model_from_config_json_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`model: path/config.json` reads the HF config relative to the scenario file, not the working directory."""
    _hf_copy(tmp_path, "Meta-Llama-3-8B")
    f = _write(tmp_path / "scenario.yaml", _with(BASE, "model", "hf/Meta-Llama-3-8B/config.json"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    model = load_scenario(f).model
    ref = catalog.entry("models", "llama3-8b")
    for key in ("layers", "hidden", "ffn_hidden", "heads", "kv_heads", "vocab", "seq_len", "tied_embeddings"):
        assert getattr(model, key) == ref[key], key
    assert "config.json" in model.source


def test_model_from_hf_config_mapping(tmp_path: Path) -> None:
    """`model: {hf_config: path, seq_len: 4096}` reads the config and lays the other keys over it."""
    _hf_copy(tmp_path, "Mixtral-8x7B-v0.1")
    f = _write(tmp_path / "scenario.yaml",
               _with(BASE, "model", {"hf_config": "hf/Mixtral-8x7B-v0.1/config.json", "seq_len": 4096}))
    model = load_scenario(f).model
    assert model.seq_len == 4096
    assert model.moe is not None and (model.moe.experts, model.moe.top_k) == (8, 2)
    assert model.layers == 32


def test_hf_config_problem_is_one_line(cli, tmp_path: Path) -> None:
    """A scenario naming a broken HF config: exit 2, one error line naming the missing HF key."""
    _hf_copy(tmp_path, "missing-layers")
    f = _write(tmp_path / "scenario.yaml", _with(BASE, "model", "hf/missing-layers/config.json"))
    cli("plan", str(f)).one_error_line("num_hidden_layers")


@pytest.mark.parametrize("case", ["missing", "missing-layers", "malformed"])
def test_hf_config_problem_names_the_config_file(cli, tmp_path: Path, case: str) -> None:
    """An error inside (or about) an HF config.json names that config.json, not only the scenario file."""
    if case != "missing":
        _hf_copy(tmp_path, case)
    f = _write(tmp_path / "scenario.yaml", _with(BASE, "model", f"hf/{case}/config.json"))
    cli("plan", str(f)).one_error_line(str(Path("hf") / case / "config.json"))


# --- assumptions and --strict ----------------------------------------------------------------------------------

GROK_ASSUMPTION = "hidden_act absent: a gated MLP, modelled as 'swiglu' (xai-org/grok-1 model.py gates its GELU MLP)"


def test_strict_refuses_a_config_resting_on_assumptions_naming_the_config(tmp_path: Path) -> None:
    """strict: a config.json the model rests on assumptions for is one SpecError naming that config.json and every
    assumption; without strict the same scenario loads with them listed."""
    config = _hf_copy(tmp_path, "gpt2")
    f = _write(tmp_path / "scenario.yaml", _with(BASE, "model", "hf/gpt2/config.json"))
    assumptions = load_scenario(f).model.assumptions
    assert len(assumptions) == 2
    with pytest.raises(SpecError) as info:
        load_scenario(f, strict=True)
    assert info.value.file == str(config) and info.value.field is None
    assert "--strict refuses model" in info.value.message and "2 assumptions" in info.value.message
    assert all(f"({i}) {a}" in info.value.message for i, a in enumerate(assumptions, 1))


def test_strict_accepts_a_config_that_states_everything(tmp_path: Path) -> None:
    """strict: a config.json stating every key the count depends on loads as without strict."""
    _hf_copy(tmp_path, "Meta-Llama-3-8B")
    f = _write(tmp_path / "scenario.yaml", _with(BASE, "model", "hf/Meta-Llama-3-8B/config.json"))
    assert load_scenario(f, strict=True) == load_scenario(f)


def test_strict_refuses_a_catalog_model_stating_assumptions(tmp_path: Path) -> None:
    """strict: a catalog model whose entry states assumptions is refused at the scenario's model.assumptions."""
    f = _write(tmp_path / "scenario.yaml", _with(BASE, "model", "gpt3-175b"))
    with pytest.raises(SpecError) as info:
        build_scenario(_with(BASE, "model", "gpt3-175b"), file=str(f), strict=True)
    assert (info.value.file, info.value.field) == (str(f), "model.assumptions")
    assert "the locally banded sparse attention layers" in info.value.message


@pytest.mark.parametrize("how", ["hf_config", "base", "set"])
def test_a_field_the_scenario_sets_makes_its_assumption_moot(tmp_path: Path, how: str) -> None:
    """Setting the field an assumption is about (beside hf_config, over a base config, or by --set) drops that
    assumption, and strict then accepts the model."""
    _hf_copy(tmp_path, "grok-1")
    path = "hf/grok-1/config.json"
    plain = build_scenario(_with(BASE, "model", path), base_dir=tmp_path).model
    assert plain.assumptions == [GROK_ASSUMPTION]
    overrides: list[str] = []
    if how == "set":
        model: Any = path
        overrides = ["model.activation=swiglu"]
    else:
        model = {"hf_config" if how == "hf_config" else "base": path, "activation": "swiglu"}
    s = build_scenario(_with(BASE, "model", model), base_dir=tmp_path, overrides=overrides, strict=True,
                       check_rules=False)
    assert s.model.assumptions == [] and s.model.activation == "swiglu"


def test_a_field_set_beside_the_config_keeps_the_other_assumptions(tmp_path: Path) -> None:
    """Only the assumptions about the fields set go: setting seq_len keeps Grok-1's activation assumption."""
    _hf_copy(tmp_path, "grok-1")
    model = {"hf_config": "hf/grok-1/config.json", "seq_len": 4096}
    assert build_scenario(_with(BASE, "model", model), base_dir=tmp_path).model.assumptions == [GROK_ASSUMPTION]


def test_a_scenario_may_state_its_own_assumptions_one_line_each(tmp_path: Path) -> None:
    """An inline model's assumptions are kept as written; one with a line break is a located error."""
    model = {"base": "llama3-8b", "assumptions": ["vocabulary padded to 128,512 in our run"]}
    assert build_scenario(_with(BASE, "model", model)).model.assumptions == model["assumptions"]
    with pytest.raises(SpecError) as info:
        build_scenario(_with(BASE, "model", {"base": "llama3-8b", "assumptions": ["two\nlines"]}), file="s.yaml")
    assert info.value.field == "model.assumptions.0" and "one line" in info.value.message


# --- valid variations ------------------------------------------------------------------------------------------


def test_yaml_toml_and_json_load_equal(tmp_path: Path) -> None:
    """The same scenario written as YAML, TOML and JSON loads to equal Scenarios."""
    scenarios = [load_scenario(_write(tmp_path / f"s.{ext}", text))
                 for ext, text in (("yaml", SMALL_YAML), ("toml", SMALL_TOML), ("json", SMALL_JSON))]
    assert scenarios[0] == scenarios[1] == scenarios[2]
    assert scenarios[0].parallelism.tp == 2 and scenarios[0].cluster.num_gpus == 64


def test_toml_scenario_plans_through_the_cli(cli, tmp_path: Path) -> None:
    """A TOML scenario plans through the CLI like a YAML one."""
    f = _write(tmp_path / "s.toml", SMALL_TOML)
    result = cli("plan", str(f), "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["step"]["parallelism"]["tp"] == 2


def test_parallelism_auto_and_omitted_are_the_same(tmp_path: Path) -> None:
    """`parallelism: auto`, `parallelism: null` and no parallelism all leave every field to the search."""
    auto = load_scenario(_write(tmp_path / "a.yaml", {**BASE, "parallelism": "auto"}))
    null = load_scenario(_write(tmp_path / "n.yaml", {**BASE, "parallelism": None}))
    omitted = load_scenario(_write(tmp_path / "o.yaml", BASE))
    assert auto == null == omitted
    assert omitted.parallelism == Parallelism()


def test_set_into_auto_parallelism(tmp_path: Path) -> None:
    """--set parallelism.tp=4 on a scenario with `parallelism: auto` fixes tp and leaves the rest free."""
    f = _write(tmp_path / "a.yaml", {**BASE, "parallelism": "auto"})
    par = load_scenario(f, ["parallelism.tp=4"]).parallelism
    assert par == Parallelism(tp=4)


def test_base_merge_of_a_cluster(tmp_path: Path) -> None:
    """`cluster: {base: colossus, num_gpus: 50000}` is colossus with 50,000 GPUs and nothing else changed."""
    s = load_scenario(_write(tmp_path / "s.yaml", _with(BASE, "cluster", {"base": "colossus", "num_gpus": 50000})))
    ref = catalog.entry("clusters", "colossus")
    assert s.cluster.num_gpus == 50000
    assert s.cluster.name == "colossus"
    assert s.cluster.accelerator.name == ref["accelerator"]
    assert s.cluster.fabric.name == ref["fabric"]
    assert s.cluster.gpus_per_node == ref["gpus_per_node"]
    assert s.cluster.scale_out_bandwidth_per_gpu_bytes_per_s == ref["scale_out_bandwidth_per_gpu_bytes_per_s"]


def test_base_merge_of_a_model_and_an_accelerator(tmp_path: Path) -> None:
    """`base:` also works for a model and for a cluster's accelerator, overriding only the keys given."""
    data = _with(BASE, "model", {"base": "llama3-8b", "seq_len": 4096})
    data = _with(data, "cluster.accelerator", {"base": "H100-SXM5-80GB", "hbm_bytes": 96e9})
    s = load_scenario(_write(tmp_path / "s.yaml", data))
    assert s.model.seq_len == 4096 and s.model.layers == catalog.entry("models", "llama3-8b")["layers"]
    ref = catalog.entry("accelerators", "H100-SXM5-80GB")
    assert s.cluster.accelerator.hbm_bytes == 96e9
    assert s.cluster.accelerator.tdp_w == ref["tdp_w"]


def test_catalog_names_are_case_insensitive(tmp_path: Path) -> None:
    """A catalog name in another case resolves to the entry."""
    s = load_scenario(_write(tmp_path / "s.yaml", _with(BASE, "model", "LLaMA3-8B")))
    assert s.model.name == "llama3-8b"


def test_overrides_apply_in_order(tmp_path: Path) -> None:
    """Later --set assignments win over earlier ones and over the file."""
    f = _write(tmp_path / "s.yaml", BASE)
    s = load_scenario(f, ["training.global_batch=128", "training.global_batch=512", "cluster.num_gpus=32"])
    assert (s.training.global_batch, s.cluster.num_gpus) == (512, 32)




def test_set_into_a_named_part_of_a_base_merged_cluster(cli) -> None:
    """--set cluster.accelerator.hbm_bytes works on a scenario whose cluster is a `base:` merge."""
    f = REPO / "scenarios" / "gpt4-on-25k-a100.yaml"
    s = load_scenario(f, ["cluster.accelerator.hbm_bytes=80e9"])
    assert s.cluster.accelerator.hbm_bytes == 80e9
    assert s.cluster.accelerator.name == catalog.entry("clusters", "gpt4-a100")["accelerator"]


def test_base_merge_overrides_one_key_of_a_named_part(tmp_path: Path) -> None:
    """`cluster: {base: colossus, fabric: {tiers: 3}}` is colossus's fabric with tiers 3, the rest kept."""
    data = _with(BASE, "cluster", {"base": "colossus", "num_gpus": 64, "fabric": {"tiers": 3}})
    s = load_scenario(_write(tmp_path / "s.yaml", data))
    assert s.cluster.fabric.tiers == 3
    assert s.cluster.fabric.name == catalog.entry("clusters", "colossus")["fabric"]


# --- nothing the user wrote is modified -----------------------------------------------------------------------------


def test_plan_with_overrides_leaves_files_unchanged(cli, tmp_path: Path) -> None:
    """A plan with --set leaves the scenario file and the HF config it names byte-for-byte unchanged."""
    config = _hf_copy(tmp_path, "Meta-Llama-3-8B")
    f = _write(tmp_path / "s.yaml", _with(BASE, "model", "hf/Meta-Llama-3-8B/config.json"))
    before = (f.read_bytes(), config.read_bytes(), f.stat().st_mtime_ns, config.stat().st_mtime_ns)
    result = cli("plan", str(f), "--json", "--set", "training.tokens=2e12", "--set", "cluster.num_gpus=32",
                 "--set", "model.seq_len=4096")
    assert result.code == 0, result.err
    assert json.loads(result.out)["step"]["num_gpus"] == 32
    assert (f.read_bytes(), config.read_bytes(), f.stat().st_mtime_ns, config.stat().st_mtime_ns) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hf", "s.yaml"]


def test_build_scenario_leaves_its_input_and_the_catalog_unchanged() -> None:
    """build_scenario with base merges and overrides mutates neither the caller's dict nor the catalog."""
    data = _with(BASE, "cluster", "llama3-16k")
    data = _with(data, "model", {"base": "llama3-8b", "seq_len": 4096})
    given = copy.deepcopy(data)
    catalog_before = {kind: copy.deepcopy(catalog.entries(kind)) for kind in catalog.KINDS}
    s = build_scenario(data, overrides=["cluster.num_gpus=32", "model.layers=16", "cluster.fabric.tiers=3",
                                        "cluster.accelerator.hbm_bytes=96e9"])
    assert (s.cluster.num_gpus, s.model.layers, s.cluster.fabric.tiers) == (32, 16, 3)
    assert s.cluster.accelerator.hbm_bytes == 96e9
    assert data == given
    assert {kind: catalog.entries(kind) for kind in catalog.KINDS} == catalog_before
    again = build_scenario(copy.deepcopy(BASE))
    assert again.cluster.num_gpus == 64 and again.model.layers == catalog_before["models"]["llama3-8b"]["layers"]


def test_scenario_calibration_overrides_are_validated_and_used() -> None:
    """A scenario's calibration overrides must name known knobs with valid values, and change the prediction."""
    from supercluster import InputError, build_scenario, plan

    base = {"name": "moe", "cluster": {"base": "llama3-16k", "num_gpus": 64}, "model": "mixtral-8x7b",
            "training": {"tokens": 1e12, "global_batch": 64, "seq_len": 4096},
            "parallelism": {"tp": 1, "pp": 1, "dp": 64, "ep": 8, "micro_batch": 1}}
    hidden = plan(build_scenario({**base, "calibration": {"ep_comm_overlap": 1.0}})).step
    exposed = plan(build_scenario({**base, "calibration": {"ep_comm_overlap": 0.0}})).step
    assert hidden.breakdown["ep_comm"] == 0.0 < exposed.breakdown["ep_comm"]
    with pytest.raises(InputError, match="unknown calibration knob"):
        build_scenario({**base, "calibration": {"ep_overlap": 1.0}})
    with pytest.raises(InputError, match="calibration.ep_comm_overlap"):
        build_scenario({**base, "calibration": {"ep_comm_overlap": 2.0}})
