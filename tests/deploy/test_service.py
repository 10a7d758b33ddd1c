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

import pandas as pd
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
    """Rows of the run's customer table as JSON objects, every float exact."""
    table = run.customers().reset_index().iloc[start:start + n]
    return [{k: (str(v) if k == "customer" else float(v)) for k, v in row.items()}
            for row in table.to_dict("records")]


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


def test_a_runs_folder_not_made_yet_lists_nothing(folders, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="segmint.deploy.service"):
        client = TestClient(create_app(folders["models"], tmp_path / "runs", api_key=KEY))
    assert "does not exist (yet)" in caplog.text
    assert client.get("/runs", headers=WITH_KEY).json() == []
    with pytest.raises(SpecError, match="models folder does not exist"):
        create_app(tmp_path / "no-models", api_key=KEY)


# ------------------------------------------------------------------ limits

def test_a_body_above_the_limit_gets_413_by_its_length_and_while_it_streams(folders):
    app = create_app(folders["models"], api_key=KEY, max_body_bytes=1000)
    requests_seen: list[dict] = []

    async def recorder(scope, receive, send):  # what the app was sent, as the server passed it
        if scope["type"] == "http":
            requests_seen.append(dict(scope["headers"]))
        await app(scope, receive, send)

    client = TestClient(recorder)
    headers = {**WITH_KEY, "Content-Type": "application/json"}
    big = json.dumps({"rows": [{"customer": str(i), "x": 1.0} for i in range(100)]}).encode()
    assert len(big) > 1000
    response = client.post("/score", content=big, headers=headers)
    assert response.status_code == 413 and response.json() == {
        "error": "the request body is larger than this server takes (1,000 bytes)",
        "limit_bytes": 1000}
    assert requests_seen[-1][b"content-length"] == str(len(big)).encode()

    response = client.post("/score", content=(big[i:i + 100] for i in range(0, len(big), 100)),
                           headers=headers)
    assert response.status_code == 413 and response.json()["limit_bytes"] == 1000
    assert b"content-length" not in requests_seen[-1]  # it was counted as it came
    assert requests_seen[-1][b"transfer-encoding"] == b"chunked"
    at_limit = b'{"rows": []}'.ljust(1000)  # exactly the limit passes
    for content in (at_limit, (at_limit[i:i + 100] for i in range(0, 1000, 100))):
        assert client.post("/score", content=content, headers=headers).status_code != 413


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
    assert {run.path.name, "damaged-run"} <= set(by_id) and "not-a-run" not in by_id
    assert by_id[run.path.name] == {
        "id": run.path.name, "kind": "segment", "created": run.manifest["created"],
        "recipe": "transactions", "recommended": run.recommended,
        "customers": run.manifest["customers"]}
    assert "corrupt" in by_id["damaged-run"]["error"]


# ------------------------------------------------------------------ model routes

def test_score_gives_what_the_published_model_gives(client, published, folders):
    from segmint.deploy.models import ModelStore

    rows = customer_rows(folders["run"], 100, start=200)
    response = client.post("/score", headers=WITH_KEY, json={"rows": rows})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["model"], body["version"]) == ("retail", 1)
    # an independent call: the model opened afresh, on the run's own customer table
    table = folders["run"].customers().reset_index().iloc[200:300]
    expected = ModelStore(folders["models"]).get("retail", 1).score(table)
    got = pd.DataFrame(body["rows"])
    assert list(got.columns) == ["customer", "segment", "name", "distance",
                                 "nearest_centroids_distance"]
    assert list(got["customer"]) == list(expected["customer"])
    assert list(got["segment"]) == list(expected["segment"])
    assert list(got["name"]) == list(expected["name"])
    assert got["distance"].to_numpy() == pytest.approx(expected["distance"].to_numpy(), rel=1e-12)
    assert got["nearest_centroids_distance"].tolist() == expected["nearest_centroids_distance"].tolist()
    assert client.post("/score", headers=WITH_KEY, json={"rows": []}).json() == {
        "model": "retail", "version": 1, "rows": []}
    # the same customers score to the segments the run gave them (nearest centre, same data)
    labels = folders["run"].solution().labels().set_index("customer")["segment"]
    outliers = got["segment"] == -1
    assert (got.loc[~outliers, "segment"].to_numpy()
            == labels.loc[got.loc[~outliers, "customer"]].to_numpy()).all()


def test_a_malformed_row_gets_422_naming_the_row_and_field(client, published, folders):
    rows = customer_rows(folders["run"], 5)
    cases = [
        (3, "recency_days", "abc", 'a numeric value is a number; got str "abc"'),
        (2, "frequency", [1, 2], "a numeric value is a number; got list [1, 2]"),
        (4, "returns", True, "a numeric value is a number; got bool true"),
        (5, "customer", None, "the customer id is missing"),
        (1, "gross_revenue", 10**400, "the value is not a finite number"),
    ]
    for row, field, value, message in cases:
        sent = [dict(r) for r in rows]
        sent[row - 1][field] = value
        response = client.post("/score", headers=WITH_KEY, json={"rows": sent})
        assert response.status_code == 422, response.text
        assert response.json() == {"error": f"row {row}, field {field!r}: {message}", "row": row,
                                   "field": field, "pointer": f"/rows/{row - 1}/{field}"}
    sent = [dict(r) for r in rows]
    del sent[1]["gross_revenue"]
    response = client.post("/score", headers=WITH_KEY, json={"rows": sent})
    assert response.status_code == 422
    assert (response.json()["row"], response.json()["field"]) == (2, "gross_revenue")
    assert "required field is missing" in response.json()["error"]
    assert str(folders["models"]) not in response.text  # no server paths to clients


def test_unknown_models_and_versions_get_404(client, published):
    for path in ["/score?model=other", "/score?model=retail&version=9"]:
        response = client.post(path, headers=WITH_KEY, json={"rows": []})
        assert response.status_code == 404, path
        assert "no published model 'other'" in response.json()["error"] or \
            "has no version 9" in response.json()["error"]
    assert client.get("/models/other", headers=WITH_KEY).status_code == 404
    assert client.get("/models/..%2Fetc", headers=WITH_KEY).status_code in (404, 422)


def test_models_lists_what_was_published(client, published):
    listed = client.get("/models", headers=WITH_KEY).json()
    assert [(m["name"], m["version"], m["solution"]) for m in listed] == \
        [("retail", 1, published.info["solution"]["name"])]
    assert listed[0]["customers"] == published.info["customers"] and listed[0]["error"] is None
    one = client.get("/models/retail", headers=WITH_KEY).json()
    assert (one["name"], one["version"]) == ("retail", 1)
    assert one["features"] == published.features and one["types"] == published.types
    assert one["info"]["solution"] == published.info["solution"]
    # no server paths or checksums leave the server
    assert "files" not in one["info"] and "path" not in one["info"]["run"]
    assert str(published.path.parent.parent) not in str(one)


def test_segments_are_the_models_profile(client, published):
    body = client.get("/segments", headers=WITH_KEY, params={"model": "retail"}).json()
    profile = published.profile()
    assert [s["segment"] for s in body["segments"]] == profile["segment"].tolist()
    assert [s["name"] for s in body["segments"]] == profile["name"].tolist()
    assert [s["size"] for s in body["segments"]] == profile["size"].tolist()
    assert sum(s["size"] for s in body["segments"]) == published.info["customers"]


def test_a_customer_gets_the_segment_the_run_labelled_it_with(client, published, folders):
    labels = folders["run"].solution().labels().set_index("customer")["segment"]
    names = published.profile().set_index("segment")["name"]
    for customer in ["12347", "12348", "18287", labels.index[1000]]:
        body = client.get(f"/customers/{customer}", headers=WITH_KEY).json()
        assert body["segment"] == labels[customer], customer
        assert body["name"] == names[labels[customer]]
        assert body["profile"]["segment"] == labels[customer]
        assert "recommendations" not in body  # no recommend run in the runs folder yet
    response = client.get("/customers/no-such-customer", headers=WITH_KEY)
    assert response.status_code == 404 and "no-such-customer" in response.json()["error"]


def test_a_customer_gets_recommendations_once_a_recommend_run_exists(client, published, folders):
    from segmint.recommend.pipeline import recommend

    spec = {"name": "recs", "source": {"path": str(BUNDLED)},
            "recommend": {"interactions": {"format": "transactions", "scale": None},
                          "split": {"kind": "last_per_user"}, "models": ["popularity"],
                          "top_n": 5}}
    recs = recommend(spec, output=folders["runs"])
    time.sleep(1.1)  # the service looks for recommend runs at most once a second
    table = recs.recommendations()
    customer = "12347"
    mine = table[table["customer"].astype(str) == customer].sort_values("rank")
    body = client.get(f"/customers/{customer}", headers=WITH_KEY, params={"top": 3}).json()
    assert body["recommend_run"] == recs.path.name
    assert [r["item"] for r in body["recommendations"]] == mine["item"].head(3).tolist()
    assert [r["rank"] for r in body["recommendations"]] == [1, 2, 3]
    runs = {r["id"]: r for r in client.get("/runs", headers=WITH_KEY).json()}
    assert runs[recs.path.name]["kind"] == "recommend"
    assert runs[recs.path.name]["customers"] == recs.manifest["interactions"]["customers"]


def test_an_unexpected_error_is_a_json_500_without_a_traceback(client, published, folders,
                                                               monkeypatch, caplog):
    from segmint.deploy.models import PublishedModel

    def broken(self, data):
        raise RuntimeError("boom in the scorer at /srv/secret/path")

    monkeypatch.setattr(PublishedModel, "score", broken)
    with caplog.at_level(logging.INFO, logger="segmint.deploy.service"):
        response = client.post("/score", headers=WITH_KEY,
                               json={"rows": customer_rows(folders["run"], 2)})
    assert response.status_code == 500
    assert response.json() == {"error": "internal error (the server's log has the details)"}
    assert "boom" in caplog.text and "Traceback" in caplog.text  # the trace goes to the log
    assert json.loads(caplog.records[-1].getMessage())["status"] == 500


def test_swagger_ui_only_when_asked(folders):
    assert TestClient(create_app(folders["models"], api_key=KEY)).get("/docs").status_code == 401
    page = TestClient(create_app(folders["models"], api_key=KEY, docs=True)).get("/docs")
    assert page.status_code == 200 and "swagger-ui" in page.text


# ------------------------------------------------------------------ logs

def test_logs_are_one_json_line_per_request_without_key_query_or_body(client, published,
                                                                    folders, caplog):
    rows = customer_rows(folders["run"], 3)
    rows[0]["customer"] = "secret-row"
    with caplog.at_level(logging.INFO, logger="segmint.deploy.service"):
        client.get("/runs?token=abc", headers=WITH_KEY)
        client.get("/runs", headers={"Authorization": "Bearer not-the-key-" + KEY})
        client.post("/score", headers=WITH_KEY, json={"rows": rows}, params={"model": "retail"})
        client.post("/score", headers=WITH_KEY, json={"rows": rows}, params={"model": "nope"})
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "segmint.deploy.service"]
    assert [(e["method"], e["path"], e["status"]) for e in lines] == [
        ("GET", "/runs", 200), ("GET", "/runs", 401), ("POST", "/score", 200),
        ("POST", "/score", 404)]
    assert (lines[2]["rows"], lines[2]["model"], lines[2]["version"]) == (3, "retail", 1)
    assert all(isinstance(e["ms"], float) for e in lines)
    assert KEY not in caplog.text and "abc" not in caplog.text and "secret-row" not in caplog.text


# ------------------------------------------------------------------ a real server

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_real_server_on_localhost_answers_over_http(folders, published):
    import httpx
    import uvicorn

    port = _free_port()
    app = create_app(folders["models"], folders["runs"], api_key=KEY)
    app.state.models.warm()  # as serve() does before listening: the newest versions loaded
    assert [key for key in app.state.models._loaded] == [("retail", 1)]
    assert app.state.models._loaded[("retail", 1)]._scorer is not None
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
            rows = customer_rows(folders["run"], 100)
            scored = http.post("/score", headers=WITH_KEY, json={"rows": rows})
            assert scored.status_code == 200
            assert [r["customer"] for r in scored.json()["rows"]] == [r["customer"] for r in rows]
            assert http.post("/score", json={"rows": rows}).status_code == 401
            response = http.post("/score", headers=WITH_KEY, content=b"x" * (9 * 1024 * 1024))
            assert response.status_code == 413
            chunks = (b"x" * 65536 for _ in range(144))  # 9 MiB, chunked: no Content-Length
            response = http.post("/score", headers=WITH_KEY, content=chunks)
            assert response.status_code == 413 and response.json()["limit_bytes"] == 8 * 1024 * 1024
    finally:
        server.should_exit = True
        thread.join(timeout=20)
    assert not thread.is_alive()


def test_serve_refuses_to_start_without_a_key(tmp_path, monkeypatch):
    monkeypatch.delenv("SEGMINT_API_KEY", raising=False)
    with pytest.raises(SpecError, match="needs an API key"):
        serve(tmp_path, port=_free_port())
