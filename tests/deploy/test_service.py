"""The HTTP service (segmint.deploy.service): keys, limits, errors, logs, and the model routes
over a real run of the bundled data published with ModelStore; one test on a real server."""
from __future__ import annotations

import json
import logging
import socket
import threading
import time
from importlib import resources
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import segmint
from segmint.deploy.service import create_app, serve
from segmint.errors import SpecError

KEY = "test-key-0123456789abcdef"
WITH_KEY = {"X-API-Key": KEY}
BUNDLED = Path(str(resources.files("segmint") / "data" / "online_retail.parquet"))
CLEANING = {"impute_customer": True, "drop_non_product_codes": True, "min_unit_price": 0.04,
            "drop_customers": ["16446"], "drop_countries": ["European Community", "Unspecified"]}
DATA_ROUTES = [("POST", "/score"), ("GET", "/models"), ("GET", "/models/retail"),
               ("GET", "/segments"), ("GET", "/customers/12347"), ("GET", "/runs"),
               ("GET", "/no-such-route")]


def tiny_spec() -> dict:
    return {"name": "tiny", "source": {"path": str(BUNDLED)},
            "recipe": {"features": "insiders", "cleaning": CLEANING},
            "sweep": {"scalings": ["log"],
                      "algorithms": [{"name": "kmeans", "grid": {"n_clusters": [3, 4]}}]},
            "select": {"stability_resamples": 2, "stability_top": 1}}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """A runs folder holding one real run (about 6 s) and an empty models folder."""
    root = tmp_path_factory.mktemp("service")
    runs, models = root / "runs", root / "models"
    models.mkdir()
    run = segmint.run(tiny_spec(), output=runs)
    return {"runs": runs, "models": models, "run": run}


@pytest.fixture(scope="module")
def published(folders):
    """The run's recommended solution published as model ``retail``."""
    from segmint.deploy.models import ModelStore

    pm = ModelStore(folders["models"]).publish(folders["run"], name="retail")
    return pm


@pytest.fixture(scope="module")
def client(folders):
    with TestClient(create_app(folders["models"], folders["runs"], api_key=KEY)) as c:
        yield c


def customer_rows(run, n: int, start: int = 0) -> list[dict]:
    table = run.customers().reset_index().iloc[start:start + n]
    return json.loads(table.to_json(orient="records", double_precision=15))


# ------------------------------------------------------------------ keys

@pytest.mark.parametrize(("method", "path"), DATA_ROUTES)
def test_every_data_route_needs_the_key(client, method, path):
    for headers in ({}, {"X-API-Key": "wrong"}, {"Authorization": "Bearer wrong"},
                    {"Authorization": f"Basic {KEY}"}, {"X-API-Key": KEY[:-1]}):
        response = client.request(method, path, headers=headers, json={"rows": []})
        assert response.status_code == 401, (path, headers)
        assert response.json()["error"].startswith("a valid API key is required")
        assert "wrong" not in response.text and KEY not in response.text


def test_health_and_openapi_are_open_and_the_key_is_accepted_both_ways(client):
    assert client.get("/health").json() == {"status": "ok"}
    spec = client.get("/openapi.json").json()
    assert {"/score", "/models", "/segments", "/customers/{customer}", "/runs"} <= set(spec["paths"])
    assert "APIKeyHeader" in spec["components"]["securitySchemes"]
    assert client.get("/docs").status_code == 401  # Swagger UI is off by default (a CDN page)
    assert client.get("/runs", headers=WITH_KEY).status_code == 200
    assert client.get("/runs", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200


def test_no_key_anywhere_refuses_to_start(tmp_path, monkeypatch):
    monkeypatch.delenv("SEGMINT_API_KEY", raising=False)
    with pytest.raises(SpecError, match="needs an API key"):
        create_app(tmp_path)
    monkeypatch.setenv("SEGMINT_API_KEY", "from-the-environment")
    client = TestClient(create_app(tmp_path))
    assert client.get("/runs", headers={"X-API-Key": "from-the-environment"}).status_code == 200


def test_key_file_first_line_and_private(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGMINT_API_KEY", "the-environment-loses")
    path = tmp_path / "key"
    path.write_text("  file-key-123  \nsecond line\n")
    path.chmod(0o600)
    client = TestClient(create_app(tmp_path, api_key_file=path))
    assert client.get("/runs", headers={"X-API-Key": "file-key-123"}).status_code == 200
    assert client.get("/runs", headers={"X-API-Key": "the-environment-loses"}).status_code == 401
    path.chmod(0o644)
    with pytest.raises(SpecError, match="chmod 600"):
        create_app(tmp_path, api_key_file=path)


# ------------------------------------------------------------------ limits

def test_a_body_above_the_limit_gets_413_by_its_length_and_while_it_streams(folders):
    app = create_app(folders["models"], api_key=KEY, max_body_bytes=1000)
    client = TestClient(app)
    big = json.dumps({"rows": [{"customer": str(i), "x": 1.0} for i in range(100)]}).encode()
    assert len(big) > 1000
    response = client.post("/score", content=big, headers={**WITH_KEY,
                                                            "Content-Type": "application/json"})
    assert response.status_code == 413 and response.json()["limit_bytes"] == 1000

    seen = []

    def chunks():  # no Content-Length: httpx sends it chunked
        for start in range(0, len(big), 100):
            seen.append(start)
            yield big[start:start + 100]

    response = client.post("/score", content=chunks(), headers={
        **WITH_KEY, "Content-Type": "application/json"})
    assert response.status_code == 413
    assert "limit_bytes" in response.json()


def test_more_rows_than_the_batch_limit_get_413(folders):
    client = TestClient(create_app(folders["models"], api_key=KEY, max_rows=5))
    response = client.post("/score", headers=WITH_KEY,
                           json={"rows": [{"customer": str(i)} for i in range(6)]})
    assert response.status_code == 413
    assert response.json() == {"error": "6 rows in one request; this server takes at most 5: "
                                        "split the batch", "field": "rows"}


def test_a_body_that_is_not_json_gets_422(client):
    response = client.post("/score", content=b"{not json", headers={
        **WITH_KEY, "Content-Type": "application/json"})
    assert response.status_code == 422 and "not valid JSON" in response.json()["error"]
    response = client.post("/score", headers=WITH_KEY, json={"rows": [{"customer": "1"}, 7]})
    assert response.status_code == 422 and response.json()["row"] == 2


# ------------------------------------------------------------------ runs

def test_runs_lists_the_run_and_survives_damaged_folders(client, folders):
    run = folders["run"]
    (folders["runs"] / "not-a-run").mkdir(exist_ok=True)  # skipped: neither manifest nor spec
    damaged = folders["runs"] / "damaged-run"
    damaged.mkdir(exist_ok=True)
    (damaged / "manifest.json").write_text("{ half a manif")
    listed = client.get("/runs", headers=WITH_KEY).json()
    by_id = {entry["id"]: entry for entry in listed}
    assert set(by_id) == {run.path.name, "damaged-run"}
    assert by_id[run.path.name] == {
        "id": run.path.name, "kind": "segment", "created": run.manifest["created"],
        "recipe": "transactions", "recommended": run.recommended,
        "customers": run.manifest["customers"]}
    assert "corrupt" in by_id["damaged-run"]["error"]


# ------------------------------------------------------------------ logs

def test_logs_are_one_json_line_per_request_without_key_or_query(client, caplog):
    with caplog.at_level(logging.INFO, logger="segmint.deploy.service"):
        client.get("/runs?token=abc", headers=WITH_KEY)
        client.get("/runs", headers={"X-API-Key": "not-the-key-" + KEY})
        client.post("/score", headers=WITH_KEY, json={"rows": [{"customer": "secret-row"}] * 3},
                    params={"model": "nope"})
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "segmint.deploy.service"]
    assert [(e["method"], e["path"], e["status"]) for e in lines] == [
        ("GET", "/runs", 200), ("GET", "/runs", 401), ("POST", "/score", lines[2]["status"])]
    assert lines[2]["rows"] == 3 and all(isinstance(e["ms"], float) for e in lines)
    assert KEY not in caplog.text and "abc" not in caplog.text and "secret-row" not in caplog.text


# ------------------------------------------------------------------ a real server

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_real_server_on_localhost_answers_over_http(folders):
    import httpx
    import uvicorn

    port = _free_port()
    app = create_app(folders["models"], folders["runs"], api_key=KEY)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, access_log=False,
                                           log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
            time.sleep(0.05)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            assert http.get("/health").json() == {"status": "ok"}
            assert http.get("/runs").status_code == 401
            runs = http.get("/runs", headers=WITH_KEY).json()
            assert folders["run"].path.name in {r["id"] for r in runs}
            response = http.post("/score", headers=WITH_KEY, content=b"x" * (9 * 1024 * 1024))
            assert response.status_code == 413
    finally:
        server.should_exit = True
        thread.join(timeout=20)
    assert not thread.is_alive()


def test_serve_refuses_to_start_without_a_key(tmp_path, monkeypatch):
    monkeypatch.delenv("SEGMINT_API_KEY", raising=False)
    with pytest.raises(SpecError, match="needs an API key"):
        serve(tmp_path, port=_free_port())
