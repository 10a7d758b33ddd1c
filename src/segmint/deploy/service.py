"""The HTTP service (``segmint serve``): published models scored over HTTP, their segment
profiles, each known customer's segment and recommendations, and the runs.

Routes (every one but ``/health``, ``/openapi.json`` and ``/dashboard`` needs the API key):

==========================  ===================================================================
``GET /health``             liveness, no key: ``{"status": "ok"}``
``POST /score``             ``{"rows": [{"customer": ..., <feature>: ...}, ...]}`` -> segments;
                            ``?model=NAME&version=N``
``GET /models``             the published models, one record per version
``GET /models/{name}``      one model's metadata (its ``model.json``); ``?version=N``
``GET /segments``           the model's segment profiles as records; ``?model=&version=``
``GET /customers/{id}``     the customer's latest segment and that segment's profile, plus its
                            top recommendations when the runs folder holds a recommend run
``GET /runs``               the runs folder: id, kind, created, recipe, recommended, customers
``GET /dashboard``          the dashboard's page (no key: it holds no data; its data routes
                            under ``/dashboard/api/`` need the key, :mod:`segmint.deploy.dashboard`)
==========================  ===================================================================

The API key: ``create_app(api_key=...)``, else the first line of ``api_key_file`` (a file
other users can read or write is refused, as ssh refuses such a private key), else the
environment variable ``SEGMINT_API_KEY``; with none, the service refuses to start
(:class:`~segmint.errors.SpecError`): data routes are never served open. Clients send it as
``X-API-Key: <key>`` or ``Authorization: Bearer <key>``; it is compared in constant time
(:func:`hmac.compare_digest`). Without it, or with a wrong one: 401 and a JSON body that does
not repeat what was sent. The key is checked before a body is read, and on unknown paths too
(401 before 404: the routes are not revealed to a client without the key).

Limits: a body above ``max_body_bytes`` gets 413 before it is read whole (a ``Content-Length``
above the limit at once, a chunked body as soon as its bytes pass it). More than ``max_rows``
rows in one /score request get 413 as well: the request is well formed but larger than this
server takes, which is what 413 says (422 means the content itself is wrong), and a client
told 413 knows to split the batch.

Statuses: 422 for malformed rows, naming ``row`` (1-based, as every segmint error counts rows),
``pointer`` (the RFC 6901 JSON pointer to the value, 0-based: ``/rows/0/recency_days``) and
``field``; 404 for an unknown model, version or customer (:class:`~segmint.errors.ModelError`);
500 with no traceback in the body for anything unexpected (the trace goes to the log).

Model choice: ``?model=`` may be left out while exactly one model name is published; the
version defaults to that name's latest. The store's folder is listed on each request, so a newly
published version serves at once; each version is loaded once and kept (the last few used). A
customer's segment comes from :meth:`PublishedModel.assignments` (the newest scheduled re-run's
scores, else the publishing run's labels), re-read every 30 seconds.

Docs: ``/openapi.json`` is served (no key: it holds no data). The Swagger UI (``/docs``) is off
by default (``docs=True`` turns it on): its page loads its JavaScript from a CDN
(cdn.jsdelivr.net), and a script from elsewhere running on the service's origin could read the
key a user types into it. Load ``/openapi.json`` into any local OpenAPI viewer instead.

Logs: one JSON line per request on the logger ``segmint.deploy.service`` (method, path, status,
ms, rows, model, version); never the key, a query string or a body. Run with uvicorn's access
log off (:func:`serve` does): it logs query strings.
"""
from __future__ import annotations

import hmac
import json
import logging
import math
import os
import stat
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader, HTTPBearer
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from segmint._secrets import RedactingFilter, redact
from segmint.errors import InputError, ModelError, SegmintError, SpecError

if TYPE_CHECKING:
    from segmint.deploy.models import ModelStore, PublishedModel

__all__ = ["create_app", "serve", "API_KEY_ENV", "DEFAULT_MAX_BODY_BYTES", "DEFAULT_MAX_ROWS"]

log = logging.getLogger(__name__)

#: the environment variable the key is read from when no argument or file gives it
API_KEY_ENV = "SEGMINT_API_KEY"
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
DEFAULT_MAX_ROWS = 10_000
#: how long a listing of recommend runs is trusted before the folder is read again
_LISTING_SECONDS = 1.0
#: how long the customers' latest segments are kept before they are read again (a scheduled
#: re-run of the model writes new ones, typically daily)
_ASSIGNMENTS_SECONDS = 30.0
#: published versions kept loaded at once
_LOADED_MODELS = 8

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


# ---------------------------------------------------------------------------------- the key

def _resolve_key(api_key: str | None, api_key_file: Path | None) -> bytes:
    """The key as bytes: the argument, else the file's first line, else the environment."""
    if api_key is None and api_key_file is not None:
        path = Path(api_key_file)
        try:
            mode = path.stat().st_mode
            if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise SpecError(f"the API key file is open to other users (mode "
                                f"{stat.S_IMODE(mode):o}); make it private: chmod 600 {path}",
                                file=str(path))
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise SpecError(f"cannot read the API key file ({exc.strerror or type(exc).__name__})",
                            file=str(path)) from None
        api_key = lines[0].strip() if lines else ""
        if not api_key:
            raise SpecError("the API key file's first line is empty", file=str(path))
    if api_key is None:
        api_key = os.environ.get(API_KEY_ENV)
    if api_key is None or not api_key.strip():
        raise SpecError(f"the service needs an API key: set {API_KEY_ENV} in the environment, or "
                        f"give a key file; it refuses to serve customer data without one")
    return api_key.strip().encode("utf-8")


def _sent_key(headers: dict[bytes, bytes]) -> bytes | None:
    """The key a request carries: ``X-API-Key``, else ``Authorization: Bearer``."""
    key = headers.get(b"x-api-key")
    if key is not None:
        return key.strip()
    auth = headers.get(b"authorization")
    if auth is not None:
        scheme, _, value = auth.strip().partition(b" ")
        if scheme.lower() == b"bearer" and value.strip():
            return value.strip()
    return None


# ----------------------------------------------------------------- the gate (pure ASGI)

class _BodyTooLarge(Exception):
    pass


def _json_body(status: int, body: dict[str, Any],
               headers: list[tuple[bytes, bytes]] | None = None) -> tuple[Message, Message]:
    data = json.dumps(body).encode("utf-8")
    return ({"type": "http.response.start", "status": status,
             "headers": [(b"content-type", b"application/json"),
                         (b"content-length", str(len(data)).encode()), *(headers or [])]},
            {"type": "http.response.body", "body": data})


class _Gate:
    """Before the app: the key (unless the path is open), the body limit; around it: one log
    line per request, and a JSON 500 for anything that escapes (no traceback to the client)."""

    def __init__(self, app: ASGIApp, *, key: bytes, open_paths: frozenset[str],
                 max_body_bytes: int) -> None:
        self.app = app
        self.key = key
        self.open_paths = open_paths
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state = scope.setdefault("state", {})
        status = {"code": 500, "started": False}

        async def send_logged(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"], status["started"] = message["status"], True
            await send(message)

        async def reply(code: int, body: dict[str, Any],
                        headers: list[tuple[bytes, bytes]] | None = None) -> None:
            for message in _json_body(code, body, headers):
                await send_logged(message)

        try:
            headers = dict(scope.get("headers") or [])
            if scope["path"] not in self.open_paths and not self._authorised(headers):
                await reply(401, {"error": "a valid API key is required (header X-API-Key, or "
                                           "Authorization: Bearer)"},
                            [(b"www-authenticate", b'Bearer realm="segmint"')])
                return
            length = headers.get(b"content-length")
            if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
                await reply(413, self._too_large())
                return
            await self._limited(scope, receive, send_logged, reply, status)
        except Exception:
            log.exception("unexpected error serving %s %s", scope.get("method"), scope["path"])
            if not status["started"]:
                await reply(500, {"error": "internal error (the server's log has the details)"})
        finally:
            entry = {"method": scope.get("method"), "path": redact(scope["path"]),
                     "status": status["code"],
                     "ms": round((time.perf_counter() - started) * 1000, 2)}
            for field in ("rows", "model", "version"):
                if state.get(field) is not None:
                    entry[field] = state[field]
            log.info(json.dumps(entry))

    def _authorised(self, headers: dict[bytes, bytes]) -> bool:
        sent = _sent_key(headers)
        return sent is not None and hmac.compare_digest(sent, self.key)

    def _too_large(self) -> dict[str, Any]:
        return {"error": f"the request body is larger than this server takes "
                         f"({self.max_body_bytes:,} bytes)", "limit_bytes": self.max_body_bytes}

    async def _limited(self, scope: Scope, receive: Receive, send: Send,
                       reply: Callable[..., Awaitable[None]], status: dict[str, Any]) -> None:
        """The app with the body counted as it streams in: past the limit, reading stops and
        the client gets 413, whatever the app made of the interrupted read."""
        received = 0
        over = False

        async def counted_receive() -> Message:
            nonlocal received, over
            if over:
                raise _BodyTooLarge
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    over = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            if not over:  # the app's answer to a body cut short is dropped for the 413
                await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except _BodyTooLarge:
            pass
        if over and not status["started"]:
            await reply(413, self._too_large())


# ------------------------------------------------------------------- models, cached

class _Models:
    """The published models, each version loaded once (the last few used kept). Which
    versions exist is asked of the store on every request (a folder listing), so a newly
    published version serves at once."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._store: ModelStore | None = None
        self._lock = threading.Lock()
        self._loaded: OrderedDict[tuple[str, int], PublishedModel] = OrderedDict()
        self._extras: dict[tuple[str, int, str], tuple[float, Any]] = {}

    @property
    def store(self) -> ModelStore:
        if self._store is None:  # on first use: the app starts without loading anything
            from segmint.deploy.models import ModelStore

            self._store = ModelStore(self.root)
        return self._store

    def warm(self) -> None:
        """Open the newest version of every published model and load its fitted model, so
        the first request does not wait for it; a damaged one is logged and left."""
        for name in self.store.names():
            try:
                self.get(name, None).scorer  # noqa: B018  (the property loads it)
            except SegmintError as exc:
                log.warning("model %s cannot be loaded: %s", name, exc)

    def resolve(self, name: str | None, version: int | None) -> tuple[str, int]:
        """The (name, version) a request means: see the module docstring's rule."""
        if name is None:
            names = self.store.names()
            if len(names) != 1:
                raise _Problem(422 if names else 404,
                               f"several models are published ({', '.join(names)}): name one with "
                               f"?model=" if names else "no model is published yet",
                               field="model")
            name = names[0]
        versions = self.store.versions(name)
        if not versions or (version is not None and version not in versions):
            self.store.get(name, version)  # raises the store's ModelError, naming what exists
        return name, versions[-1] if version is None else version

    def get(self, name: str | None, version: int | None) -> PublishedModel:
        key = self.resolve(name, version)
        with self._lock:
            if key in self._loaded:
                self._loaded.move_to_end(key)
                return self._loaded[key]
        model = self.store.get(*key)  # outside the lock: opening checks every file's checksum
        with self._lock:
            model = self._loaded.setdefault(key, model)
            self._loaded.move_to_end(key)
            while len(self._loaded) > _LOADED_MODELS:
                gone, _ = self._loaded.popitem(last=False)
                for extra in [k for k in self._extras if k[:2] == gone]:
                    del self._extras[extra]
        return model

    def extra(self, model: PublishedModel, what: str, make: Callable[[], Any],
              max_age: float = math.inf) -> Any:
        """A table derived from a loaded model (its profile, its customers' segments), made
        once per version, or again once it is ``max_age`` seconds old."""
        key = (model.name, int(model.version), what)
        with self._lock:
            made = self._extras.get(key)
            if made is not None and time.monotonic() - made[0] <= max_age:
                return made[1]
        value = make()
        with self._lock:
            self._extras[key] = (time.monotonic(), value)
        return value


class _Problem(Exception):
    """A request the service turns down with a status of its own."""

    def __init__(self, status: int, message: str, *, field: str | None = None,
                 row: int | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.field, self.row = status, message, field, row


# ------------------------------------------------------------------- runs

def _recommend_manifest(folder: Path) -> dict[str, Any] | None:
    """The manifest of a recommend run folder (``"kind": "recommend"`` in manifest.json, as
    :func:`segmint.recommend.pipeline.recommend` writes it), else None."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return manifest if isinstance(manifest, dict) and manifest.get("kind") == "recommend" else None


def _run_folders(runs: Path) -> list[Path]:
    """The folders under ``runs`` that are runs or were meant to be (a manifest or a spec);
    hidden ones (runs being written, ``.name.tmp-...``) left out."""
    if not runs.is_dir():
        return []
    return sorted(p for p in runs.iterdir() if p.is_dir() and not p.name.startswith(".")
                  and ((p / "manifest.json").exists() or (p / "spec.yaml").exists()))


def _describe_run(folder: Path) -> dict[str, Any]:
    """One record of GET /runs; a damaged run gets an ``error`` instead of raising."""
    from segmint.runs import open_run

    entry: dict[str, Any] = {"id": folder.name}
    try:
        recommend = _recommend_manifest(folder)
        if recommend is not None:
            from segmint.recommend.pipeline import RecommendRun

            manifest = RecommendRun(folder).manifest
            return {**entry, "kind": "recommend", "created": manifest.get("created"),
                    "recipe": None, "recommended": manifest.get("recommend_with"),
                    "customers": (manifest.get("interactions") or {}).get("customers")}
        run = open_run(folder)
        return {**entry, "kind": "segment", "created": run.manifest.get("created"),
                "recipe": run.manifest.get("recipe"), "recommended": run.recommended,
                "customers": run.manifest.get("customers")}
    except SegmintError as exc:
        return {**entry, "error": str(exc)}
    except Exception as exc:  # a damaged folder must not take the listing down
        return {**entry, "error": f"unreadable run ({type(exc).__name__})"}


class _Recommendations:
    """The newest recommend run's recommendations in the runs folder (newest by its
    manifest's ``created``), looked up by customer; the folder is looked at again at most once
    a second, and the table re-read when a newer run appears or its file changes."""

    def __init__(self, runs: Path | None) -> None:
        self.runs = runs
        self._lock = threading.Lock()
        self._checked = -math.inf
        self._source: tuple[Path, float] | None = None
        self._table: pd.DataFrame | None = None  # sorted by customer, then rank
        self._run_id: str | None = None

    def _newest(self) -> Path | None:
        assert self.runs is not None
        found = []
        for folder in _run_folders(self.runs):
            manifest = _recommend_manifest(folder)
            if manifest is not None and (folder / "recommendations.parquet").is_file():
                found.append((str(manifest.get("created") or ""), folder.name, folder))
        return max(found)[2] if found else None

    def _refresh(self) -> None:
        self._checked = time.monotonic()
        newest = self._newest()
        try:
            source = None if newest is None else \
                (newest, (newest / "recommendations.parquet").stat().st_mtime)
            if source == self._source:
                return
            self._source, self._table, self._run_id = source, None, None
            if newest is not None:
                table = pd.read_parquet(newest / "recommendations.parquet")
                table["customer"] = table["customer"].astype("string")
                self._table = table.sort_values(["customer", "rank"], kind="stable") \
                    .set_index("customer", drop=False)
                self._run_id = newest.name
        except Exception as exc:  # a damaged file: customers are served without recommendations
            log.warning("recommendations of run %s are unreadable (%s); serving customers "
                        "without them", getattr(newest, "name", "?"), type(exc).__name__)

    def of(self, customer: str, top: int) -> tuple[str | None, list[dict[str, Any]] | None]:
        """(the recommend run's id, the customer's top recommendations), or (None, None) when
        the runs folder holds no (readable) recommend run."""
        if self.runs is None:
            return None, None
        with self._lock:
            if time.monotonic() - self._checked > _LISTING_SECONDS:
                self._refresh()
            table, run_id = self._table, self._run_id
        if table is None:
            return None, None
        start, stop = table.index.slice_locs(customer, customer)
        return run_id, _records(table.iloc[start:min(stop, start + top)].reset_index(drop=True))


# ------------------------------------------------------------------- JSON helpers

def _plain(value: Any) -> Any:
    """A value as JSON takes it: NumPy scalars as Python ones, NaN and <NA> as null."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    columns = [str(c) for c in frame.columns]
    return [dict(zip(columns, (_plain(v) for v in row), strict=True))
            for row in frame.itertuples(index=False, name=None)]


_NUMBER_TYPES = (int, float)


def _rows_frame(rows: list[Any], features: list[str], types: dict[str, str]) -> pd.DataFrame:
    """JSON rows as a customer table (``customer`` + the model's features, typed): the first
    malformed row raises :class:`_Problem` (422) naming its row (1-based) and field.

    A feature may be null (a missing value: the model's preparation imputes it as it did in
    fitting); it may not be absent. Fields the model does not use are ignored.
    """
    columns: dict[str, list[Any]] = {"customer": [], **{f: [] for f in features}}
    for i, row in enumerate(rows):
        def bad(field: str, what: str, i: int = i) -> _Problem:
            return _Problem(422, f"row {i + 1}, field {field!r}: {what}", row=i + 1, field=field)

        if not isinstance(row, dict):
            raise bad("", f"a row is a JSON object; got {type(row).__name__}")
        customer = row.get("customer")
        if isinstance(customer, bool) or not isinstance(customer, (str, int)) or customer == "":
            raise bad("customer", "the customer id is missing" if customer in (None, "") else
                      f"the customer id is a string or an integer; got {type(customer).__name__}")
        columns["customer"].append(str(customer))
        for feature in features:
            if feature not in row:
                raise bad(feature, "a required field is missing")
            value, kind = row[feature], types.get(feature, "numeric")
            if value is None:
                columns[feature].append(None)
            elif kind == "categorical":
                if isinstance(value, bool) or not isinstance(value, (str, int)):
                    raise bad(feature, f"a categorical value is a string; got "
                                       f"{type(value).__name__}")
                columns[feature].append(str(value))
            elif isinstance(value, bool) and kind == "binary":
                columns[feature].append(float(value))
            elif isinstance(value, bool) or not isinstance(value, _NUMBER_TYPES):
                raise bad(feature, f"a {kind} value is a number; got {type(value).__name__} "
                                   f"{_clip(value)}")
            else:
                try:
                    number = float(value)  # an integer too large for a float overflows
                except OverflowError:
                    number = math.inf
                if not math.isfinite(number):
                    raise bad(feature, "the value is not a finite number")
                columns[feature].append(number)
    frame = {"customer": pd.array(columns["customer"], dtype="string")}
    for feature in features:
        if types.get(feature) == "categorical":
            frame[feature] = pd.array(columns[feature], dtype="string")
        else:
            frame[feature] = pd.array([np.nan if v is None else v for v in columns[feature]],
                                      dtype="float64")
    return pd.DataFrame(frame)


def _clip(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


# ------------------------------------------------------------------- OpenAPI shapes

class ScoreRequest(BaseModel):
    """Customer-table rows: ``customer`` and the model's feature columns."""

    rows: list[dict[str, Any]] = Field(
        description="one object per customer: its id in 'customer' and a value for each of "
                    "the model's features (GET /models/{name} lists them)",
        examples=[[{"customer": "12347", "gross_revenue": 4310.0, "recency_days": 2,
                    "quantity_of_products": 182, "returns": 0, "frequency": 0.019}]])


class CentroidDistance(BaseModel):
    centroid_id: int
    distance: float


class ScoredRow(BaseModel):
    customer: str
    segment: int
    name: str
    distance: float | None
    nearest_centroids_distance: list[CentroidDistance]


class ScoreResponse(BaseModel):
    model: str
    version: int
    rows: list[ScoredRow]


class ErrorBody(BaseModel):
    error: str
    row: int | None = Field(None, description="1-based row of the request's rows")
    pointer: str | None = Field(None, description="JSON pointer to the value (0-based)")
    field: str | None = None


_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "no API key, or a wrong one"},
    404: {"model": ErrorBody, "description": "unknown model, version or customer"},
    413: {"model": ErrorBody, "description": "body or batch above the server's limits"},
    422: {"model": ErrorBody, "description": "a malformed row or parameter, named"},
}


# ------------------------------------------------------------------- the app

def create_app(models: str | Path | None, runs: str | Path | None = None, *, api_key: str | None = None,
               api_key_file: Path | None = None, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
               max_rows: int = DEFAULT_MAX_ROWS, docs: bool = False,
               dashboard: bool = True) -> FastAPI:
    """The service as an ASGI app (FastAPI) over a folder of published models.

    Parameters
    ----------
    models : folder of published models (:class:`segmint.deploy.models.ModelStore`); None:
        ``SEGMINT_MODELS``, else ``models`` (:func:`segmint.deploy.models.models_root`)
    runs : folder of run folders, for GET /runs and for recommendations; optional (one
        that does not exist yet lists nothing, with a warning at start)
    api_key : the key clients must send; default the first line of ``api_key_file``, else
        the environment variable ``SEGMINT_API_KEY``; with none of them: SpecError
    api_key_file : a file readable by its owner only, holding the key on its first line
    max_body_bytes : larger request bodies get 413 (default 8 MiB)
    max_rows : a /score request with more rows gets 413 (default 10,000)
    docs : serve the Swagger UI at /docs (it loads its script from a CDN; off by default)
    dashboard : serve the dashboard (:mod:`segmint.deploy.dashboard`) at /dashboard, its data
        routes behind the same key

    Returns
    -------
    fastapi.FastAPI

    Examples
    --------
    >>> import tempfile
    >>> from fastapi.testclient import TestClient
    >>> app = create_app(Path(tempfile.mkdtemp()), api_key="s3cret-key")
    >>> client = TestClient(app)
    >>> client.get("/health").json()
    {'status': 'ok'}
    >>> client.get("/runs").status_code, client.get("/runs", headers={"X-API-Key": "s3cret-key"}).json()
    (401, [])
    >>> create_app(Path(tempfile.mkdtemp()), api_key="  ")
    Traceback (most recent call last):
    segmint.errors.SpecError: the service needs an API key: ...
    """
    from segmint import __version__
    from segmint.deploy.models import models_root

    key = _resolve_key(api_key, api_key_file)
    models = models_root(models)
    if not models.is_dir():
        raise SpecError("the models folder does not exist (publish a model first)", file=str(models))
    if runs is not None and not Path(runs).is_dir():  # optional: GET /runs is empty until it is
        log.warning("the runs folder %r does not exist (yet): GET /runs lists nothing and "
                    "customers get no recommendations until it does", str(runs))
    if max_body_bytes < 1 or max_rows < 1:
        raise SpecError(f"the limits must be positive; got max_body_bytes={max_body_bytes}, "
                        f"max_rows={max_rows}")
    store = _Models(models)
    recommendations = _Recommendations(None if runs is None else Path(runs))

    app = FastAPI(title="segmint", version=__version__,
                  description="Customer segments and recommendations from published segmint "
                              "models. Every route but /health and /openapi.json needs the API "
                              "key (header X-API-Key, or Authorization: Bearer).",
                  docs_url="/docs" if docs else None, redoc_url=None, openapi_url="/openapi.json")
    open_paths = frozenset(["/health", "/openapi.json", *(["/docs", "/docs/oauth2-redirect"]
                                                          if docs else [])])
    if dashboard:  # its page holds no data: open, as /health is; its data routes are keyed
        from segmint.deploy.dashboard import add_dashboard

        open_paths |= {add_dashboard(app, runs, models)}
    # the gate checks the key; these declare it in the OpenAPI document
    keyed = [Depends(APIKeyHeader(name="X-API-Key", auto_error=False)),
             Depends(HTTPBearer(auto_error=False))]

    @app.exception_handler(_Problem)
    async def _problem(request: Request, exc: _Problem) -> JSONResponse:
        return _error(exc.status, exc.message, row=exc.row, field=exc.field)

    @app.exception_handler(SegmintError)
    async def _segmint_error(request: Request, exc: SegmintError) -> JSONResponse:
        # exc.message, not str(exc): the client is not told the server's file paths
        if isinstance(exc, InputError):
            where = f"row {exc.row}, field {exc.column!r}: " if exc.row and exc.column else ""
            return _error(422, where + exc.message, row=exc.row, field=exc.column)
        if isinstance(exc, ModelError):
            return _error(404, exc.message)
        if isinstance(exc, SpecError):
            return _error(422, exc.message)
        log.error("segmint error serving %s: %s", request.url.path, exc)
        return _error(500, "internal error (the server's log has the details)")

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        loc = list(first.get("loc") or [])
        if first.get("type") == "json_invalid":
            return _error(422, f"the body is not valid JSON ({first.get('ctx', {}).get('error')}, "
                               f"at character {loc[-1] if loc else '?'})")
        if loc[:2] == ["body", "rows"] and len(loc) > 2 and isinstance(loc[2], int):
            row = loc[2] + 1
            return _error(422, f"row {row}: {first.get('msg')}", row=row, field="")
        where = ".".join(str(part) for part in loc[1:]) or "body"
        return _error(422, f"{where}: {first.get('msg')}", field=where)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail), headers=exc.headers)

    @app.get("/health", summary="Liveness (no key)")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/score", dependencies=keyed, response_model=ScoreResponse, responses=_ERRORS,
              summary="Score customer-table rows with a published model")
    def score(body: ScoreRequest, request: Request,
              model: str | None = Query(None, description="model name; may be left out while "
                                                          "one model is published"),
              version: int | None = Query(None, ge=1, description="default the latest")
              ) -> JSONResponse:
        request.state.rows = len(body.rows)
        if len(body.rows) > max_rows:
            raise _Problem(413, f"{len(body.rows):,} rows in one request; this server takes at "
                                f"most {max_rows:,}: split the batch", field="rows")
        pm = store.get(model, version)
        request.state.model, request.state.version = pm.name, int(pm.version)
        scored = [] if not body.rows else \
            _scored_rows(pm.score(_rows_frame(body.rows, list(pm.features), dict(pm.types))))
        return JSONResponse({"model": pm.name, "version": int(pm.version), "rows": scored})

    @app.get("/models", dependencies=keyed, responses=_ERRORS,
             summary="The published models, one record per version")
    def list_models() -> JSONResponse:
        return JSONResponse(_records(store.store.list()))

    @app.get("/models/{name}", dependencies=keyed, responses=_ERRORS,
             summary="One published model's metadata")
    def model_info(name: str, request: Request, version: int | None = Query(None, ge=1)
                   ) -> JSONResponse:
        pm = store.get(name, version)
        request.state.model, request.state.version = pm.name, int(pm.version)
        # model.json without what only the server needs: its paths and file checksums
        info = {k: v for k, v in pm.info.items() if k not in ("files", "relabel")}
        info["run"] = {k: v for k, v in (info.get("run") or {}).items() if k != "path"}
        if isinstance(info.get("input"), dict):
            info["input"] = {k: v for k, v in info["input"].items() if k != "file"}
        return JSONResponse({"name": pm.name, "version": int(pm.version),
                             "features": list(pm.features), "types": dict(pm.types),
                             "info": _plain(info)})

    @app.get("/segments", dependencies=keyed, responses=_ERRORS,
             summary="The model's segment profiles")
    def segments(request: Request, model: str | None = Query(None),
                 version: int | None = Query(None, ge=1)) -> JSONResponse:
        pm = store.get(model, version)
        request.state.model, request.state.version = pm.name, int(pm.version)
        profile = store.extra(pm, "profile", lambda: _records(pm.profile()))
        return JSONResponse({"model": pm.name, "version": int(pm.version), "segments": profile})

    @app.get("/customers/{customer}", dependencies=keyed, responses=_ERRORS,
             summary="A customer's segment, its profile, and recommendations")
    def customer_view(customer: str, request: Request, model: str | None = Query(None),
                      version: int | None = Query(None, ge=1),
                      top: int = Query(10, ge=1, le=1000, description="recommendations to return")
                      ) -> JSONResponse:
        pm = store.get(model, version)
        request.state.model, request.state.version = pm.name, int(pm.version)
        known = store.extra(pm, "assignments", lambda: _by_customer(pm.assignments()),
                            max_age=_ASSIGNMENTS_SECONDS)
        if customer not in known:
            raise ModelError(f"customer {customer!r} is not among model {pm.name!r} "
                             f"version {pm.version}'s customers")
        segment, name = known[customer]
        profile = store.extra(pm, "profile", lambda: _records(pm.profile()))
        row = next((p for p in profile if p.get("segment") == segment), None)
        run_id, recs = recommendations.of(customer, top)
        body: dict[str, Any] = {"customer": customer, "model": pm.name, "version": int(pm.version),
                                "segment": segment, "name": name, "profile": row}
        if recs is not None:
            body["recommendations"] = recs
            body["recommend_run"] = run_id
        return JSONResponse(body)

    @app.get("/runs", dependencies=keyed, responses=_ERRORS, summary="The runs folder's runs")
    def list_runs() -> JSONResponse:
        if runs is None:
            return JSONResponse([])
        return JSONResponse([_describe_run(folder) for folder in _run_folders(Path(runs))])

    app.add_middleware(_Gate, key=key, open_paths=open_paths, max_body_bytes=max_body_bytes)
    app.state.models = store
    return app


def _error(status: int, message: str, *, row: int | None = None, field: str | None = None,
           headers: Mapping[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"error": message}
    if row is not None:
        body["row"] = row
    if field is not None:
        body["field"] = field
    if row is not None and field is not None:
        body["pointer"] = f"/rows/{row - 1}" + (f"/{_escape_pointer(field)}" if field else "")
    return JSONResponse(body, status_code=status, headers=headers)


def _escape_pointer(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _by_customer(assignments: pd.DataFrame) -> dict[str, tuple[int, str]]:
    """customer id -> (segment, name), from a model's assignments."""
    return {str(c): (int(s), str(n)) for c, s, n in
            zip(assignments["customer"], assignments["segment"], assignments["name"], strict=True)}


def _scored_rows(scored: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for customer, segment, name, distance, nearest in zip(
            scored["customer"], scored["segment"], scored["name"], scored["distance"],
            scored["nearest_centroids_distance"], strict=True):
        distance = float(distance)
        out.append({"customer": str(customer), "segment": int(segment), "name": str(name),
                    "distance": distance if math.isfinite(distance) else None,
                    "nearest_centroids_distance": [
                        {"centroid_id": int(c["centroid_id"]), "distance": float(c["distance"])}
                        for c in nearest]})
    return out


def serve(models: str | Path | None, runs: str | Path | None = None, host: str = "127.0.0.1",
          port: int = 8000, **limits: Any) -> None:
    """Run the service with uvicorn until interrupted (``segmint serve``).

    ``limits`` go to :func:`create_app` (``api_key``, ``api_key_file``, ``max_body_bytes``,
    ``max_rows``, ``docs``, ``dashboard``). Binds 127.0.0.1 by default: put a TLS-terminating
    proxy in front before listening beyond this machine, since the key travels in a header. uvicorn's access
    log stays off (it prints query strings); the service logs one JSON line per request.
    When logging is not set up yet, INFO and above go to stderr through
    :class:`segmint.RedactingFilter`.
    """
    import uvicorn

    if not logging.getLogger().handlers and not logging.getLogger("segmint").handlers:
        handler = logging.StreamHandler()
        handler.addFilter(RedactingFilter())
        handler.setFormatter(logging.Formatter("%(message)s"))
        for name in ("segmint", "uvicorn"):
            logger = logging.getLogger(name)
            logger.addHandler(handler)
            logger.setLevel(logging.INFO)
            logger.propagate = False
    app = create_app(models, runs, **limits)
    app.state.models.warm()  # before listening: /health answers once the models are loaded
    uvicorn.run(app, host=host, port=port, access_log=False, log_config=None,
                server_header=False)
