"""The dashboard (``segmint dashboard``): a page over the runs folder and the published
models, served by the service's own app (:func:`segmint.deploy.service.create_app`) behind
the same API key.

The page (``GET /dashboard``) holds no data and is open; it asks for the key once, keeps it in
the browser tab's ``sessionStorage`` and sends it as ``X-API-Key`` on every request to the data
routes below, which the service's gate guards exactly as its other routes. A CSV download is
fetched with the key in the header and handed to the browser as a Blob, so the key never
travels in a URL. The page loads nothing from elsewhere (it works offline); its one script and
one style sheet are inline and allowed by their hashes in a Content-Security-Policy that
allows nothing else (no other script, no request to another origin), and every text taken
from the data is set with ``textContent``, never parsed as HTML.

Data routes (every one needs the key):

======================================================  ======================================
``GET /dashboard/api/runs``                              run folders: id, created, customers,
                                                         recommended, solutions
``GET /dashboard/api/runs/{run}``                        one run: its leaderboard and features
``GET /dashboard/api/runs/{run}/solutions/{solution}``   a solution's profile (per segment)
``GET .../solutions/{solution}/segments/{segment}``      a segment's profile and one page of its
                                                         members; ``?q=`` (id substring),
                                                         ``?page=`` (1-based), ``?per_page=``
``GET .../segments/{segment}/members.csv``               every member, with its feature values
``GET /dashboard/api/compare``                           two solutions' profiles and the
                                                         cross-tab of their customers;
                                                         ``?run_a=&solution_a=&run_b=&solution_b=``
``GET /dashboard/api/customer``                          ``?id=&run=``: the customer's segment in
                                                         each solution of the run and in each
                                                         published model
``POST /dashboard/api/publish``                          ``{"run", "solution", "name"}``: publish
``GET /dashboard/api/models/{name}/history``             scheduled re-runs of a published model,
                                                         each with its transition matrix
======================================================  ======================================

Runs, solutions and segments are named by their ids (folder name, solution name, segment id),
never by position; an unknown one gets 404 with a message, bad paging 422. Customer ids are
text throughout.
"""
from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import threading
from collections import OrderedDict
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import APIKeyHeader, HTTPBearer
from pydantic import BaseModel, Field

from segmint.deploy.service import (
    _ASSIGNMENTS_SECONDS,
    _ERRORS,
    _by_customer,
    _describe_run,
    _plain,
    _Problem,
    _recommend_manifest,
    _records,
    _run_folders,
)
from segmint.errors import ModelError, SegmintError
from segmint.runs import _layout as L

if TYPE_CHECKING:
    from segmint.runs import Run

__all__ = ["add_dashboard", "DASHBOARD_PATH", "MAX_PER_PAGE"]

#: where the page is served (open: it holds no data)
DASHBOARD_PATH = "/dashboard"
#: the most members one page may hold
MAX_PER_PAGE = 500
#: runs kept open with their tables (the last few looked at)
_OPEN_RUNS = 4
_PAGE_FILE = "dashboard.html"


# ------------------------------------------------------------------- the page

def _page() -> tuple[str, str]:
    """The page's HTML and its Content-Security-Policy (the inline script and style allowed by
    their sha256, nothing else)."""
    html = (resources.files("segmint.deploy") / _PAGE_FILE).read_text(encoding="utf-8")

    def hashes(tag: str) -> str:
        found = re.findall(rf"<{tag}>(.*?)</{tag}>", html, flags=re.S)
        return " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()}'"
                        for text in found)

    policy = (f"default-src 'none'; script-src {hashes('script')}; style-src {hashes('style')}; "
              f"connect-src 'self'; img-src 'self' data: blob:; base-uri 'none'; "
              f"form-action 'none'; frame-ancestors 'none'")
    return html, policy


# ------------------------------------------------------------------- runs, cached

class _Runs:
    """The runs folder's segment runs, opened on request and the last few kept with their
    customer table and labels; a run whose manifest changed is opened again."""

    def __init__(self, root: Path | None) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._open: OrderedDict[str, tuple[int, Run, dict[str, Any]]] = OrderedDict()

    def folder(self, run_id: str) -> Path:
        """The folder of run ``run_id``: one of the runs folder's own, by its name."""
        folders = {} if self.root is None else {p.name: p for p in _run_folders(self.root)}
        if run_id not in folders:
            raise ModelError(f"no run {run_id!r} in the runs folder" +
                             ("" if folders else " (it holds no run yet)"))
        return folders[run_id]

    def get(self, run_id: str) -> Run:
        return self._entry(run_id)[0]

    def _entry(self, run_id: str) -> tuple[Run, dict[str, Any]]:
        from segmint.runs import Run

        folder = self.folder(run_id)
        try:
            stamp = (folder / L.MANIFEST).stat().st_mtime_ns
        except OSError:
            raise ModelError(f"run {run_id!r} has no manifest (not a segment run)") from None
        with self._lock:
            held = self._open.get(run_id)
            if held is not None and held[0] == stamp:
                self._open.move_to_end(run_id)
                return held[1], held[2]
        if _recommend_manifest(folder) is not None:
            raise ModelError(f"run {run_id!r} is a recommend run: it has no segments")
        run = Run(folder)
        tables: dict[str, Any] = {}
        with self._lock:
            self._open[run_id] = (stamp, run, tables)
            self._open.move_to_end(run_id)
            while len(self._open) > _OPEN_RUNS:
                self._open.popitem(last=False)
        return run, tables

    def _table(self, run_id: str, key: str, make: Any) -> Any:
        run, tables = self._entry(run_id)
        if key not in tables:
            tables[key] = make(run)
        return tables[key]

    def customers(self, run_id: str) -> pd.DataFrame:
        """The run's customer table, indexed by customer id as text."""
        def make(run: Run) -> pd.DataFrame:
            table = run.customers()
            table.index = table.index.astype("string")
            return table
        return self._table(run_id, "customers", make)

    def labels(self, run_id: str, solution: str) -> pd.Series:
        """A solution's segment of each customer: int64, indexed by customer id as text."""
        def make(run: Run) -> pd.Series:
            table = run.solution(solution).labels()
            return pd.Series(table["segment"].astype("int64").to_numpy(), name="segment",
                             index=pd.Index(table["customer"].astype("string"), name="customer"))
        return self._table(run_id, f"labels/{solution}", make)

    def profile(self, run_id: str, solution: str) -> pd.DataFrame:
        return self._table(run_id, f"profile/{solution}",
                           lambda run: run.solution(solution).profile())


# ------------------------------------------------------------------- shaping answers

def _profile_features(run: Run, profile: pd.DataFrame) -> list[dict[str, str]]:
    """The run's features the profile describes: numeric ones by mean and lift, categorical
    ones by their most common value, its share and lift."""
    out = []
    for feature in run.features:
        if f"mean_{feature}" in profile.columns:
            out.append({"name": feature, "kind": "numeric"})
        elif f"top_{feature}" in profile.columns:
            out.append({"name": feature, "kind": "categorical"})
    return out


def _solution_view(runs: _Runs, run_id: str, solution: str) -> dict[str, Any]:
    run = runs.get(run_id)
    chosen = run.solution(solution)  # a ModelError (404) names the run's solutions
    profile = runs.profile(run_id, chosen.name)
    return {"run": run_id, "solution": chosen.name, "recommended": chosen.name == run.recommended,
            "algorithm": chosen.metrics.get("algorithm"),
            "description": chosen.metrics.get("description"),
            "customers": int(profile["size"].sum()) if "size" in profile else None,
            "features": _profile_features(run, profile),
            "segments": _records(profile)}


def _segment_row(runs: _Runs, run_id: str, solution: str, segment: int) -> dict[str, Any]:
    view = _solution_view(runs, run_id, solution)
    row = next((s for s in view["segments"] if s.get("segment") == segment), None)
    if row is None:
        known = [s.get("segment") for s in view["segments"]]
        raise ModelError(f"solution {solution!r} of run {run_id!r} has no segment {segment}; "
                         f"its segments: {known}")
    return {**view, "segment": row}


def _members(runs: _Runs, run_id: str, solution: str, segment: int, query: str) -> pd.DataFrame:
    """The segment's customers, in the run's order, with their feature values; ``query`` keeps
    those whose id holds it (case ignored)."""
    labels = runs.labels(run_id, solution)
    ids = labels.index[labels.to_numpy() == segment]
    if query:
        ids = ids[ids.str.contains(query, case=False, regex=False).fillna(False).to_numpy(bool)]
    customers = runs.customers(run_id)
    features = [f for f in runs.get(run_id).features if f in customers.columns]
    table = customers.reindex(ids)[features].reset_index()
    return table.rename(columns={table.columns[0]: "customer"})


def _crosstab(a: pd.Series, b: pd.Series, rows: list[int], columns: list[int]) -> dict[str, Any]:
    """Counts of the customers in both labelings, by (segment in a, segment in b), joined on
    the customer id; every segment of either profile has its row or column, zeros included."""
    shared = a.index.intersection(b.index)
    counts = pd.crosstab(a.loc[shared].to_numpy(), b.loc[shared].to_numpy())
    counts = counts.reindex(index=rows, columns=columns, fill_value=0)
    return {"rows": rows, "columns": columns,
            "counts": [[int(v) for v in line] for line in counts.to_numpy()],
            "shared": int(len(shared)), "only_a": int(len(a) - len(shared)),
            "only_b": int(len(b) - len(shared))}


def _history(root: Path, name: str) -> list[dict[str, Any]]:
    """The model's scheduled re-runs, oldest first, each with its transition matrix (counts;
    revenue when recorded) and its summary, as the re-run wrote them."""
    from segmint.deploy.models import _check_name
    from segmint.deploy.schedule import MIGRATION, history

    _check_name(name)
    if not (root / name).is_dir():
        raise ModelError(f"no published model {name!r}")
    out = []
    for row in history(root, name).to_dict("records"):
        folder = Path(row.pop("folder"))
        entry: dict[str, Any] = {"id": folder.name, **{k: _plain(v) for k, v in row.items()}}
        for table in ("counts", "revenue"):
            path = folder / MIGRATION / f"{table}.parquet"
            if path.is_file():
                frame = pd.read_parquet(path)
                entry[table] = {"rows": [str(i) for i in frame.index],
                                "columns": [str(c) for c in frame.columns],
                                "values": [[_plain(v) for v in line] for line in frame.to_numpy()]}
        summary = folder / MIGRATION / "summary.json"
        if summary.is_file():
            entry["summary"] = json.loads(summary.read_text(encoding="utf-8")).get("summary")
        out.append(entry)
    return out


def _pages(total: int, page: int, per_page: int) -> int:
    """How many pages ``total`` rows make; a page past the last is a 422."""
    pages = math.ceil(total / per_page)
    if page > max(pages, 1):
        raise _Problem(422, f"page {page} is past the last page ({max(pages, 1)})", field="page")
    return pages


def _csv_name(*parts: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", "_".join(parts)) + ".csv"


class PublishRequest(BaseModel):
    """A solution of a run to publish as the next version of a model."""

    run: str = Field(description="the run's folder name (GET /dashboard/api/runs)")
    solution: str = Field(description="one of the run's solutions")
    name: str = Field(description="the model's name: letters, digits, '_', '.', '-'")


# ------------------------------------------------------------------- the routes

def add_dashboard(app: FastAPI, runs: str | Path | None, models: Path) -> str:
    """Add the dashboard's page and data routes to the service's app.

    Parameters
    ----------
    app : the app :func:`segmint.deploy.service.create_app` made (its gate checks the key)
    runs : the runs folder (None: the dashboard lists no run)
    models : the published models' folder

    Returns
    -------
    str
        The page's path, which the caller leaves open (it holds no data).

    Examples
    --------
    >>> import tempfile
    >>> from fastapi.testclient import TestClient
    >>> from segmint.deploy.service import create_app
    >>> client = TestClient(create_app(Path(tempfile.mkdtemp()), api_key="s3cret-key"))
    >>> client.get("/dashboard").status_code, client.get("/dashboard/api/runs").status_code
    (200, 401)
    >>> client.get("/dashboard/api/runs", headers={"X-API-Key": "s3cret-key"}).json()
    []
    """
    from segmint.deploy.models import ModelStore

    held = _Runs(None if runs is None else Path(runs))
    keyed = [Depends(APIKeyHeader(name="X-API-Key", auto_error=False)),
             Depends(HTTPBearer(auto_error=False))]
    api = APIRouter(prefix=f"{DASHBOARD_PATH}/api", dependencies=keyed, responses=_ERRORS,
                    tags=["dashboard"])
    page: dict[str, tuple[str, str]] = {}

    @app.get(DASHBOARD_PATH, include_in_schema=False)
    def dashboard_page() -> HTMLResponse:
        if "page" not in page:  # read on first use: no import-time work
            page["page"] = _page()
        html, policy = page["page"]
        return HTMLResponse(html, headers={"Content-Security-Policy": policy,
                                           "X-Content-Type-Options": "nosniff",
                                           "Referrer-Policy": "no-referrer",
                                           "Cache-Control": "no-store"})

    @api.get("/runs", summary="The runs folder's segment runs")
    def list_runs() -> JSONResponse:
        listed = []
        for folder in [] if held.root is None else _run_folders(held.root):
            entry = _describe_run(folder)
            if entry.get("kind") == "recommend":
                continue
            if "error" not in entry:
                try:
                    entry["solutions"] = len(held.get(folder.name).solutions())
                except SegmintError as exc:
                    entry["error"] = exc.message
            listed.append(entry)
        return JSONResponse(sorted(listed, key=lambda e: str(e.get("created") or ""), reverse=True))

    @api.get("/runs/{run_id}", summary="A run's leaderboard and features")
    def run_view(run_id: str) -> JSONResponse:
        run = held.get(run_id)
        board = run.leaderboard()
        keep = [c for c in ("solution", "description", "algorithm", "representation",
                            "n_clusters", "sizes",
                            "noise_share", "silhouette", "davies_bouldin", "calinski_harabasz",
                            "rank", "recommended") if c in board.columns]
        return JSONResponse({"run": run_id, "created": run.manifest.get("created"),
                             "customers": run.manifest.get("customers"),
                             "recommended": run.recommended, "features": run.features,
                             "solutions": run.solutions(), "leaderboard": _records(board[keep]),
                             # each solution in words ("k-means, 4 segments, log scaling")
                             "descriptions": {str(s): str(d) for s, d in zip(
                                 board["solution"], board["description"], strict=True)
                                 if pd.notna(d)} if "description" in board else {}})

    @api.get("/runs/{run_id}/solutions/{solution}", summary="A solution's profile")
    def solution_view(run_id: str, solution: str) -> JSONResponse:
        return JSONResponse(_solution_view(held, run_id, solution))

    @api.get("/runs/{run_id}/solutions/{solution}/segments/{segment}",
             summary="A segment's profile and one page of its members")
    def segment_view(run_id: str, solution: str, segment: int,
                     q: str = Query("", max_length=200, description="customer id substring"),
                     page: int = Query(1, ge=1, description="1-based"),
                     per_page: int = Query(50, ge=1, le=MAX_PER_PAGE)) -> JSONResponse:
        view = _segment_row(held, run_id, solution, segment)
        members = _members(held, run_id, view["solution"], segment, q)
        pages = _pages(len(members), page, per_page)
        shown = members.iloc[(page - 1) * per_page: page * per_page]
        return JSONResponse({"run": run_id, "solution": view["solution"],
                             "features": view["features"], "segment": view["segment"],
                             "q": q, "total": len(members), "page": page,
                             "per_page": per_page, "pages": pages,
                             "columns": [str(c) for c in members.columns],
                             "members": _records(shown)})

    @api.get("/runs/{run_id}/solutions/{solution}/segments/{segment}/members.csv",
             summary="Every member of a segment, with its feature values, as CSV")
    def segment_csv(run_id: str, solution: str, segment: int) -> Response:
        view = _segment_row(held, run_id, solution, segment)
        members = _members(held, run_id, view["solution"], segment, "")
        name = _csv_name(run_id, view["solution"], f"segment{segment}")
        return Response(members.to_csv(index=False, lineterminator="\n"), media_type="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="{name}"',
                                 "Cache-Control": "no-store"})

    @api.get("/compare", summary="Two solutions side by side, with the cross-tab of customers")
    def compare(run_a: str, solution_a: str, run_b: str, solution_b: str) -> JSONResponse:
        a = _solution_view(held, run_a, solution_a)
        b = _solution_view(held, run_b, solution_b)
        labels_a, labels_b = held.labels(run_a, a["solution"]), held.labels(run_b, b["solution"])
        table = _crosstab(labels_a, labels_b, [int(s["segment"]) for s in a["segments"]],
                          [int(s["segment"]) for s in b["segments"]])
        if table["shared"] == 0:
            raise _Problem(422, "the two solutions share no customer: they cannot be compared")
        return JSONResponse({"a": a, "b": b, "crosstab": table})

    @api.get("/customer", summary="One customer's segments in a run and the published models")
    def customer_view(request: Request, id: str = Query(..., min_length=1, max_length=200),
                      run: str | None = Query(None)) -> JSONResponse:
        body: dict[str, Any] = {"customer": id, "run": run, "solutions": [], "models": []}
        found = False
        if run is not None:
            opened = held.get(run)
            customers = held.customers(run)
            if id in customers.index:
                found = True
                row = customers.loc[id]
                body["features"] = {str(k): _plain(v) for k, v in row.items()}
            for solution in opened.solutions():
                labels = held.labels(run, solution)
                if id in labels.index:
                    found = True
                    segment = int(labels.loc[id])
                    names = held.profile(run, solution).set_index("segment")["name"]
                    body["solutions"].append({"solution": solution, "segment": segment,
                                              "name": str(names.get(segment, "")),
                                              "recommended": solution == opened.recommended})
        store = request.app.state.models
        for name in store.store.names():
            try:
                pm = store.get(name, None)
                known = store.extra(pm, "assignments", lambda pm=pm: _by_customer(pm.assignments()),
                                    max_age=_ASSIGNMENTS_SECONDS)
            except SegmintError:
                continue  # a damaged model is listed as such by GET /models
            if id in known:
                found = True
                segment, seg_name = known[id]
                body["models"].append({"model": pm.name, "version": int(pm.version),
                                       "segment": segment, "name": seg_name})
        if not found:
            where = f"run {run!r} or " if run is not None else ""
            raise ModelError(f"customer {id!r} is not in {where}any published model")
        return JSONResponse(body)

    @api.post("/publish", status_code=201, summary="Publish a solution of a run as a model")
    def publish(body: PublishRequest, request: Request) -> JSONResponse:
        run = held.get(body.run)
        chosen = run.solution(body.solution)  # 404 for an unknown one, before anything is written
        try:
            pm = ModelStore(models).publish(run, solution=chosen.name, name=body.name)
        except ModelError as exc:  # the solution exists but cannot be published
            raise _Problem(422, exc.message, field="solution") from None
        request.state.model, request.state.version = pm.name, int(pm.version)
        return JSONResponse({"name": pm.name, "version": int(pm.version), "run": body.run,
                             "solution": chosen.name}, status_code=201)

    @api.get("/models/{name}/history",
             summary="A published model's scheduled re-runs and their transition matrices")
    def model_history(name: str) -> JSONResponse:
        return JSONResponse({"model": name, "reruns": _history(models, name)})

    app.include_router(api)
    return DASHBOARD_PATH
