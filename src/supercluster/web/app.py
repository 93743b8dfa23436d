"""The web app: a JSON API over the library (each route parses, calls the function the CLI command calls, and
returns its typed report) and one page at ``/``.

Errors are JSON ``{"error": "<one located line>"}``: bad input (an InputError, a malformed or mistyped body, a
bound of :mod:`.limits` exceeded) is 422; a well-formed request without an answer (InfeasibleError: nothing fits
in memory) is 409; a body over ``MAX_BODY_BYTES`` is 413; an unknown route 404. Anything else is a 500 with a
generic message, its traceback logged on the server, never sent. Routes are plain functions, which FastAPI runs
in its thread pool: one slow plan does not stall the event loop.
"""

from __future__ import annotations

import logging
from functools import cache
from importlib import resources
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..errors import InfeasibleError, InputError, SuperclusterError
from ..facility.ledger import FacilityReport
from ..network.cost import Algorithm, Op
from ..network.report import CollectiveReport, FabricReport, collective_report, fabric_report
from ..reliability.report import DEFAULT_RUNS, ReliabilityReport
from ..report.html import build_report, render_html
from ..search import rank
from ..search.plan import plan, run_reliability
from ..search.rank import SearchReport
from ..search.run_report import RunReport
from ..spec import catalog as catalog_data
from ..spec.load import catalog_cluster
from ..validate import validate_collectives, validate_file
from ..validate.claims import ClaimsReport, check_claims_file
from ..validate.collectives import CollectiveValidationResult
from ..validate.gemms import GemmValidationResult, validate_gemms
from ..validate.memory import MemoryValidationResult, validate_memory
from ..validate.power import PowerValidationResult, validate_power
from ..validate.runs import ValidationResult
from .limits import MAX_BODY_BYTES, MAX_GPUS, MAX_RUNS, MAX_TOP, check_gpus, check_range
from .scenario import WHERE, scenario_data, web_scenario

log = logging.getLogger("supercluster.web")

ScenarioField = Field(description="the scenario: a JSON object (parts inline or by catalog name, e.g. "
                                  "{\"cluster\": {\"base\": \"llama3-16k\", \"num_gpus\": 64}, \"model\": "
                                  "\"llama3-8b\", ...}) or its YAML/JSON text; never a file path")


class ScenarioRequest(BaseModel):
    """A scenario, given inline."""

    model_config = ConfigDict(extra="forbid")

    scenario: dict[str, Any] | str = ScenarioField
    strict: bool = Field(False, description="refuse a model that rests on assumptions")


class SearchRequest(ScenarioRequest):
    top: int = Field(10, description=f"how many of the fastest configurations to list (1 to {MAX_TOP})")
    pareto: bool = Field(False, description="also the Pareto front over step time, memory headroom and cost")


class ReliabilityRequest(ScenarioRequest):
    runs: int = Field(DEFAULT_RUNS, description=f"simulated runs (1 to {MAX_RUNS:,})")
    seed: int | None = Field(None, ge=0, description="random seed (default: the scenario's)")


class CollectiveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cluster: str = Field(description="a catalog cluster name")
    op: Op
    bytes: float = Field(description="message size in bytes")
    gpus: int = Field(description=f"GPUs in the group (consecutive ranks; at most {MAX_GPUS:,})")
    algo: Algorithm | None = None
    stride: int = 1


class ParseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(description="a scenario's YAML or JSON text")


ValidationSet = Literal["runs", "collectives", "memory", "power", "gemms"]
VALIDATIONS: dict[str, Any] = {"runs": validate_file, "collectives": validate_collectives, "memory": validate_memory,
                               "power": validate_power, "gemms": validate_gemms}
ValidationResponse = (ValidationResult | CollectiveValidationResult | MemoryValidationResult | PowerValidationResult
                      | GemmValidationResult)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _one_line(exc: RequestValidationError) -> str:
    """The first problem of a request, located as a scenario's are: 'request: top: Input should be a valid
    integer'. A union's members (pydantic names them in the location: 'dict[str,any]', 'str') become one
    'expected A or B'."""
    errors = list(exc.errors())
    if not errors:
        return f"{WHERE}: malformed request"
    first = errors[0]
    loc = [str(p) for p in first.get("loc", ())]
    if first.get("type") == "json_invalid":
        reason = (first.get("ctx") or {}).get("error", "not JSON")
        return f"{WHERE}: malformed JSON at character {loc[-1] if len(loc) > 1 else 0}: {reason}"
    tags = [str(e["loc"][len(loc) - 1]) for e in errors
            if len(e.get("loc", ())) == len(loc) and [str(p) for p in e["loc"][:-1]] == loc[:-1]]
    if len(loc) > 1 and len(tags) > 1 and all(not tag.isidentifier() or tag in _TYPES for tag in tags):
        where, msg, more = loc[1:-1], f"expected {' or '.join(_TYPES.get(tag, tag) for tag in tags)}", ""
    else:
        where, msg = loc[1:], str(first.get("msg", "invalid"))
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    field = ".".join(where)
    return f"{WHERE}: {field}: {msg}{more}" if field else f"{WHERE}: {msg}{more}"


_TYPES = {"dict[str,any]": "a JSON object", "str": "text (YAML or JSON)", "int": "an integer", "float": "a number",
          "bool": "true or false"}


class BodyLimit:
    """ASGI middleware: a request body over ``limit`` bytes is refused with 413 before a route reads it (by its
    Content-Length, or while it streams in)."""

    def __init__(self, app: Any, limit: int = MAX_BODY_BYTES) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = _error(413, f"request body over {self.limit:,} bytes (the server's bound)")
        length = dict(scope.get("headers", [])).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            await too_large(scope, receive, send)
            return
        chunks: list[bytes] = []
        size, more = 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await too_large(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body, sent = b"".join(chunks), False

        async def replay() -> Any:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


@cache
def _page() -> str:
    return resources.files(__package__).joinpath("page.html").read_text(encoding="utf-8")


@cache
def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return str(get_plotlyjs())


def create_app() -> FastAPI:
    """The app (routes, error handlers and the body bound)."""
    # no /docs or /redoc: FastAPI draws them with scripts from a CDN; the schema is at /openapi.json
    app = FastAPI(title="supercluster", version=__version__, docs_url=None, redoc_url=None,
                  description="A digital twin of AI training superclusters. Bounds per request: body "
                              f"{MAX_BODY_BYTES:,} bytes (413), {MAX_GPUS:,} GPUs, search top {MAX_TOP}, "
                              f"{MAX_RUNS:,} Monte Carlo runs (422). Errors: {{\"error\": \"<located line>\"}}; "
                              "bad input 422, infeasible 409.")

    @app.exception_handler(InfeasibleError)
    async def _infeasible(request: Request, exc: InfeasibleError) -> JSONResponse:
        return _error(409, str(exc.located(file=WHERE, field_prefix="scenario")))  # a scenario's only

    @app.exception_handler(SuperclusterError)
    async def _input(request: Request, exc: SuperclusterError) -> JSONResponse:
        return _error(422, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _malformed(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, _one_line(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:  # a body FastAPI cannot decode at all (JSON nested past the parser's depth)
            return _error(422, f"{WHERE}: cannot be read ({exc.detail})")
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return _error(500, "internal error (logged on the server)")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> HTMLResponse:
        return HTMLResponse(_page())

    @app.get("/plotly.js", include_in_schema=False)
    def plotly_js() -> Response:
        return Response(_plotly_js(), media_type="text/javascript",
                        headers={"Cache-Control": "public, max-age=86400"})

    @app.post("/api/parse", response_model=dict[str, Any])
    def parse(req: ParseRequest) -> dict[str, Any]:
        """A scenario's YAML/JSON text as a JSON object (names unresolved), for the page to change knobs on."""
        return scenario_data(req.text)

    @app.post("/api/plan", response_model=RunReport)
    def plan_route(req: ScenarioRequest) -> RunReport:
        """The run report of the scenario's best parallel configuration (as `supercluster plan --json`)."""
        return plan(web_scenario(req.scenario, strict=req.strict))

    @app.post("/api/search", response_model=SearchReport)
    def search_route(req: SearchRequest) -> SearchReport:
        """The fastest configurations that fit and (pareto) the front (as `supercluster search --json`)."""
        check_range(req.top, 1, MAX_TOP, field="top", what="configurations")
        return rank(web_scenario(req.scenario, strict=req.strict), top=req.top, pareto=req.pareto)

    @app.get("/api/catalog", response_model=dict[str, dict[str, dict[str, Any]]])
    def catalog_all() -> dict[str, dict[str, dict[str, Any]]]:
        """Every catalog entry, by kind and name, with its source."""
        return {k: catalog_data.entries(k) for k in catalog_data.KINDS}

    @app.get("/api/catalog/{kind}", response_model=dict[str, dict[str, Any]])
    def catalog_kind(kind: str) -> dict[str, dict[str, Any]]:
        """The catalog entries of one kind (accelerators, clusters, models, facilities, ...)."""
        if kind not in catalog_data.KINDS:
            raise InputError(f"unknown catalog kind {kind!r} (expected one of: {', '.join(catalog_data.KINDS)})",
                             field="kind")
        return catalog_data.entries(kind)

    @app.get("/api/fabric/{cluster}", response_model=FabricReport)
    def fabric_route(cluster: str) -> FabricReport:
        """A catalog cluster's scale-out fabric: tiers, switches, optics, bisection, power."""
        c = catalog_cluster(cluster)
        check_gpus(c.num_gpus, field="cluster")
        return fabric_report(c)

    @app.post("/api/collective", response_model=CollectiveReport)
    def collective_route(req: CollectiveRequest) -> CollectiveReport:
        """Time and bandwidths of one collective on a catalog cluster (as `supercluster collective --json`)."""
        check_gpus(req.gpus, field="gpus")
        if req.bytes != round(req.bytes):
            raise InputError(f"expected a whole number of bytes, got {req.bytes:g}", field="bytes")
        return collective_report(catalog_cluster(req.cluster), req.op, req.bytes, req.gpus, stride=req.stride,
                                 algorithm=req.algo)

    @app.post("/api/facility", response_model=FacilityReport)
    def facility_route(req: ScenarioRequest) -> FacilityReport:
        """Power, water, carbon and money of the scenario's cluster and run (the scenario names a facility)."""
        s = web_scenario(req.scenario, strict=req.strict)
        if s.facility is None:
            raise InputError("the scenario names no facility (add facility: NAME or an inline facility)",
                             field="scenario.facility")
        ledger = plan(s, with_reliability=False).facility
        assert ledger is not None  # the scenario names a facility
        return ledger

    @app.post("/api/reliability", response_model=ReliabilityReport)
    def reliability_route(req: ReliabilityRequest) -> ReliabilityReport:
        """Failures, checkpoints and a Monte Carlo of the run (as `supercluster reliability --json`)."""
        check_range(req.runs, 1, MAX_RUNS, field="runs", what="runs")
        s = web_scenario(req.scenario, strict=req.strict)
        run = plan(s, with_reliability=False)
        return run_reliability(s, run.step, run.facility, runs=req.runs, seed=req.seed)

    @app.get("/api/claims", response_model=ClaimsReport)
    def claims_route() -> ClaimsReport:
        """The Memphis Supercluster's public claims with verdicts, and the TOP500 systems."""
        return check_claims_file()

    @app.post("/api/report", response_class=HTMLResponse)
    def report_route(req: ScenarioRequest) -> HTMLResponse:
        """The scenario's self-contained HTML report (as `supercluster report`)."""
        return HTMLResponse(render_html(build_report(web_scenario(req.scenario, strict=req.strict))))

    @app.get("/api/validate/{name}", response_model=ValidationResponse)
    def validate_route(name: ValidationSet) -> Any:
        """A built-in validation set predicted and compared: runs (calibration runs), collectives, memory, power,
        gemms (GEMM throughputs by shape)."""
        return VALIDATIONS[name]()

    app.add_middleware(BodyLimit)
    return app
