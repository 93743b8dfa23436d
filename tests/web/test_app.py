"""The web API: happy paths agree with the library; every bad input is a JSON 4xx with one located line."""

from __future__ import annotations

import json
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the web app needs fastapi: pip install -e '.[dev]'")
pytest.importorskip("httpx", reason="FastAPI's TestClient needs httpx: pip install -e '.[dev]'")

from fastapi.testclient import TestClient  # noqa: E402

from supercluster.search.plan import plan  # noqa: E402
from supercluster.spec.load import build_scenario  # noqa: E402
from supercluster.web import MAX_BODY_BYTES, MAX_GPUS, MAX_RUNS, MAX_TOP, create_app  # noqa: E402


def small() -> dict[str, Any]:
    """A catalog scenario that plans in a fraction of a second."""
    return {"cluster": {"base": "llama3-16k", "num_gpus": 64}, "model": "llama3-8b",
            "training": {"tokens": 1e12, "global_batch": 256, "seq_len": 8192}}


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(create_app(), raise_server_exceptions=False)


def refused(response: Any, status: int, *words: str) -> str:
    """The response is ``status`` with a one-line JSON error containing ``words``, and no traceback."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    message = body["error"]
    assert "\n" not in message and "Traceback" not in message, message
    for word in words:
        assert word in message, message
    return str(message)


def test_plan_is_the_library_plan(client: TestClient) -> None:
    """POST /api/plan returns the RunReport whose step time is the library's plan() of the same scenario."""
    r = client.post("/api/plan", json={"scenario": small()})
    assert r.status_code == 200, r.text
    expected = plan(build_scenario(small()))
    assert r.json()["step"]["step_time_s"] == expected.step.step_time_s
    assert r.json()["step"]["mfu"] == expected.step.mfu


def test_plan_takes_yaml_text(client: TestClient) -> None:
    """A scenario pasted as YAML text plans as its JSON object does."""
    text = ("cluster: {base: llama3-16k, num_gpus: 64}\nmodel: llama3-8b\n"
            "training: {tokens: 1e12, global_batch: 256, seq_len: 8192}\n")
    by_text = client.post("/api/plan", json={"scenario": text})
    by_object = client.post("/api/plan", json={"scenario": small()})
    assert by_text.status_code == 200, by_text.text
    assert by_text.json()["step"] == by_object.json()["step"]


def test_parse_returns_the_object(client: TestClient) -> None:
    """POST /api/parse turns YAML text into the scenario's JSON object, names unresolved."""
    r = client.post("/api/parse", json={"text": "model: llama3-8b\ncluster: llama3-16k\n"})
    assert r.status_code == 200 and r.json() == {"model": "llama3-8b", "cluster": "llama3-16k"}


def test_search_catalog_fabric_collective(client: TestClient) -> None:
    """Search, catalog, fabric and collective answer with their typed reports."""
    r = client.post("/api/search", json={"scenario": small(), "top": 3})
    assert r.status_code == 200, r.text
    assert len(r.json()["top"]) == 3
    kinds = client.get("/api/catalog").json()
    assert "llama3-8b" in kinds["models"] and "llama3-16k" in kinds["clusters"]
    assert client.get("/api/catalog/facilities").json().keys() == kinds["facilities"].keys()
    fabric = client.get("/api/fabric/llama3-16k")
    assert fabric.status_code == 200 and fabric.json()["tiers"]
    coll = client.post("/api/collective", json={"cluster": "llama3-16k", "op": "all_reduce", "bytes": 2**30,
                                                "gpus": 16})
    assert coll.status_code == 200, coll.text
    assert coll.json()["time_s"] > 0


def test_facility_reliability_report(client: TestClient) -> None:
    """Facility, reliability and the HTML report of a small scenario."""
    s = {**small(), "facility": "generic-liquid-cooled"}
    fac = client.post("/api/facility", json={"scenario": s})
    assert fac.status_code == 200, fac.text
    assert fac.json()["average"]["facility_w"] > 0
    rel = client.post("/api/reliability", json={"scenario": s, "runs": 20, "seed": 1})
    assert rel.status_code == 200, rel.text
    page = client.post("/api/report", json={"scenario": s})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<html" in page.text


@pytest.mark.parametrize("name", ["runs", "collectives", "memory", "power", "gemms"])
def test_validate_built_in_sets(client: TestClient, name: str) -> None:
    """GET /api/validate/NAME runs the built-in set as `supercluster validate` does: the same rows and verdict."""
    from supercluster.web.app import VALIDATIONS

    r = client.get(f"/api/validate/{name}")
    assert r.status_code == 200, r.text
    expected = VALIDATIONS[name]()
    assert [row["id"] for row in r.json()["rows"]] == [row.id for row in expected.rows]
    assert r.json()["passed"] == expected.passed


def test_unknown_validation_set_is_422(client: TestClient) -> None:
    """A validation set that is not built in (a file name, say) is 422 naming the choices."""
    refused(client.get("/api/validate/bogus"), 422, "name", "runs")
    refused(client.get("/api/validate/..%2Fetc%2Fpasswd"), 404)


def test_claims_are_memphis(client: TestClient) -> None:
    """GET /api/claims judges the Memphis Supercluster's public claims."""
    r = client.get("/api/claims")
    assert r.status_code == 200, r.text
    assert r.json()["scenario"] == "memphis" and r.json()["claims"]


def test_openapi_schema_names_the_reports(client: TestClient) -> None:
    """The OpenAPI schema lists the routes and the typed reports as response models."""
    schema = client.get("/openapi.json").json()
    for path in ("/api/plan", "/api/search", "/api/catalog", "/api/catalog/{kind}", "/api/fabric/{cluster}",
                 "/api/collective", "/api/facility", "/api/reliability", "/api/claims", "/api/report",
                 "/api/validate/{name}"):
        assert path in schema["paths"], path
    assert {"RunReport", "StepReport", "SearchReport", "FabricReport"} <= set(schema["components"]["schemas"])
    refused(client.get("/docs"), 404)  # FastAPI's docs page loads its scripts from a CDN: not served


def test_page_is_served_without_a_cdn(client: TestClient) -> None:
    """The page at / loads its script from this app only, and /plotly.js serves Plotly."""
    page = client.get("/")
    assert page.status_code == 200 and "<script src=\"/plotly.js\">" in page.text
    assert "http://" not in page.text and "https://" not in page.text
    js = client.get("/plotly.js")
    assert js.status_code == 200 and "plotly" in js.text[:2000].lower()


# -- bad input ------------------------------------------------------------------------------------------------


def test_oversized_body_is_413(client: TestClient) -> None:
    """A body over the bound is refused with 413 before any work."""
    s = {**small(), "description": "x" * (MAX_BODY_BYTES + 1)}
    refused(client.post("/api/plan", json={"scenario": s}), 413, f"{MAX_BODY_BYTES:,}")


def test_oversized_body_without_length_is_413(client: TestClient) -> None:
    """A streamed body (no Content-Length) over the bound is refused with 413 too."""
    def chunks() -> Any:
        for _ in range(MAX_BODY_BYTES // 1024 + 2):
            yield b" " * 1024

    refused(client.post("/api/plan", content=chunks(), headers={"Content-Type": "application/json"}), 413)


def test_too_many_gpus_is_422(client: TestClient) -> None:
    """A scenario over the server's GPU bound is refused, naming the field and the bound."""
    s = small()
    s["cluster"]["num_gpus"] = MAX_GPUS * 2
    refused(client.post("/api/plan", json={"scenario": s}), 422, "cluster.num_gpus", f"{MAX_GPUS:,}")
    refused(client.post("/api/collective", json={"cluster": "llama3-16k", "op": "all_reduce", "bytes": 1e6,
                                                 "gpus": MAX_GPUS + 1}), 422, "gpus")


def test_work_bounds_are_422(client: TestClient) -> None:
    """Search top and Monte Carlo runs over their bounds are refused before any work."""
    refused(client.post("/api/search", json={"scenario": small(), "top": MAX_TOP + 1}), 422, "top")
    refused(client.post("/api/reliability", json={"scenario": small(), "runs": MAX_RUNS + 1}), 422, "runs")


def test_unknown_catalog_name_is_422(client: TestClient) -> None:
    """An unknown model, cluster or catalog kind is 422 with the nearest names."""
    s = {**small(), "model": "llama3-8"}
    refused(client.post("/api/plan", json={"scenario": s}), 422, "model", "llama3-8b")
    s = {**small(), "cluster": {"base": "llama3-16", "num_gpus": 64}}
    refused(client.post("/api/plan", json={"scenario": s}), 422, "cluster")
    refused(client.get("/api/fabric/nope"), 422, "unknown cluster")
    refused(client.get("/api/catalog/gadgets"), 422, "gadgets")


@pytest.mark.parametrize(("change", "field"), [
    ({"model": "/etc/passwd"}, "model"),
    ({"model": "config.json"}, "model"),
    ({"model": {"base": "../models/config.json"}}, "model.base"),
    ({"model": {"hf_config": "config.json"}}, "model.hf_config"),
    ({"calibration": "../calibration.yaml"}, "calibration"),
    ({"calibration": {"file": "calibration.yaml"}}, "calibration.file"),
], ids=["absolute", "config-json", "base-path", "hf-config", "calibration", "calibration-file"])
def test_a_path_in_the_scenario_is_422(client: TestClient, change: dict[str, Any], field: str) -> None:
    """No scenario field may name a file: the request is refused, naming the field."""
    refused(client.post("/api/plan", json={"scenario": {**small(), **change}}), 422, field)


def test_a_cluster_name_is_never_read_as_a_file(client: TestClient) -> None:
    """A fabric or collective names a catalog cluster only: a path is an unknown cluster."""
    refused(client.post("/api/collective", json={"cluster": "/etc/passwd", "op": "all_reduce", "bytes": 1e6,
                                                 "gpus": 2}), 422, "unknown cluster")


def test_a_file_named_like_a_cluster_is_not_read(client: TestClient, tmp_path: Any,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A file in the server's folder named as a catalog cluster is ignored: the catalog's cluster is used."""
    from supercluster.spec.load import load_cluster

    monkeypatch.chdir(tmp_path)
    (tmp_path / "eos").write_text("cluster: {base: llama3-16k, num_gpus: 64}\nmodel: llama3-8b\n"
                                  "training: {tokens: 1e12, global_batch: 256, seq_len: 8192}\n", encoding="utf-8")
    assert load_cluster("eos").num_gpus == 64  # the CLI reads a file it is given
    fabric = client.get("/api/fabric/eos")
    assert fabric.status_code == 200, fabric.text
    assert fabric.json()["gpus"] != 64 and fabric.json()["cluster"] == "eos"


def test_malformed_json_is_422(client: TestClient) -> None:
    """A body that is not JSON is 422 with one line."""
    refused(client.post("/api/plan", content=b"{not json", headers={"Content-Type": "application/json"}), 422,
            "malformed JSON")


def test_json_nested_too_deep_is_422(client: TestClient) -> None:
    """JSON nested past the parser's depth is 422 with one line, not a 400 or a 500."""
    body = b'{"scenario":' + b"[" * 100_000
    refused(client.post("/api/plan", content=body, headers={"Content-Type": "application/json"}), 422, "request")


def test_malformed_yaml_is_422(client: TestClient) -> None:
    """Pasted text that is not YAML is 422 with one located line."""
    refused(client.post("/api/plan", json={"scenario": "cluster: [unclosed"}), 422, "scenario")


@pytest.mark.parametrize("body", [
    {"scenario": small(), "top": "many"},
    {"scenario": 42},
    {"scenario": small(), "bogus": 1},
    {},
], ids=["top-string", "scenario-number", "extra-key", "missing-scenario"])
def test_wrong_types_are_422(client: TestClient, body: dict[str, Any]) -> None:
    """A mistyped, missing or unknown request field is 422 with one line naming it."""
    field = next(iter(set(body) - {"scenario"}), "scenario")
    refused(client.post("/api/search", json=body), 422, f"request: {field}")


def test_wrong_type_inside_the_scenario_is_located(client: TestClient) -> None:
    """A mistyped scenario field is 422 naming the field."""
    s = small()
    s["training"]["global_batch"] = "lots"
    refused(client.post("/api/plan", json={"scenario": s}), 422, "training.global_batch")


def test_infeasible_scenario_is_409(client: TestClient) -> None:
    """A well-formed scenario with no configuration that fits is 409 with the reason."""
    s = {"cluster": {"base": "llama3-16k", "num_gpus": 8}, "model": "llama3-405b",
         "training": {"tokens": 1e12, "global_batch": 16, "seq_len": 8192}}
    message = refused(client.post("/api/plan", json={"scenario": s}), 409)
    assert message


def test_unknown_route_is_json_404(client: TestClient) -> None:
    """An unknown route is a JSON 404."""
    refused(client.get("/api/nothing"), 404)


def test_unexpected_error_is_a_generic_500(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug in a route is a 500 with a generic message: no traceback or exception text reaches the client."""
    from supercluster.web import app as web_app

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(web_app, "plan", broken)
    client = TestClient(web_app.create_app(), raise_server_exceptions=False)
    message = refused(client.post("/api/plan", json={"scenario": small()}), 500)
    assert "secret" not in message


def test_errors_are_strict_json(client: TestClient) -> None:
    """Every error body parses as strict JSON."""
    r = client.post("/api/plan", json={"scenario": {**small(), "model": "nope"}})
    json.loads(r.text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
