"""The dashboard (segmint.deploy.dashboard): its data routes over two real runs of a small
customer table (the same 300 customers), checked against the runs' own labels and customer
tables counted again with pandas; then the page itself in headless Chromium against a real
server on 127.0.0.1, with every request to elsewhere refused and recorded."""
from __future__ import annotations

import io
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

import segmint
from segmint.deploy.models import ModelStore
from segmint.deploy.schedule import rerun
from segmint.deploy.service import create_app

KEY = "dashboard-key-0123456789"
WITH_KEY = {"X-API-Key": KEY}
ODD_ID = '<b>bold</b> & "co"'  # a customer id that is markup: shown as text, never parsed
API = "/dashboard/api"


def _clients(n: int = 300, seed: int = 0, moved: int = 0) -> pd.DataFrame:
    """Three plain groups of customers; ``moved`` of the first group's customers given the
    third group's values (a later month in which some customers changed)."""
    rng = np.random.default_rng(seed)
    group = np.arange(n) % 3
    group[np.flatnonzero(group == 0)[:moved]] = 2
    frame = pd.DataFrame({
        "client_ref": [f"R-{i:05d}" for i in range(n)],
        "balance": np.array([100.0, 900.0, 3000.0])[group] * rng.lognormal(0, 0.1, n),
        "visits": np.array([2.0, 8.0, 20.0])[group] + rng.normal(0, 0.5, n),
        "plan": np.array(["basic", "silver", "gold"])[group],
    })
    frame.loc[4, "client_ref"] = ODD_ID
    return frame


def _spec(name: str, ks: list[int]) -> dict:
    return {"name": name, "recipe": {"kind": "attributes"},
            "sweep": {"scalings": ["standard"],
                      "algorithms": [{"name": "kmeans", "grid": {"n_clusters": ks}}]},
            "select": {"stability_resamples": 2, "stability_top": 1},
            "profile": {"projections": [], "explain": False}}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Two runs over the same customers (k 2 and 3; k 4), and a model published from the
    first with two scheduled re-runs, the second after 20 customers moved."""
    root = tmp_path_factory.mktemp("dashboard")
    runs, models = root / "runs", root / "models"
    models.mkdir()
    clients = _clients()
    first = segmint.run(clients, _spec("clients", [2, 3]), output=runs)
    second = segmint.run(clients, _spec("clients-again", [4]), output=runs)
    ModelStore(models).publish(first, solution="kmeans_k3", name="weekly")
    deploy = {**_spec("clients", [3]), "deploy": {"model": "weekly", "models": str(models),
                                                   "mode": "score"}}
    reruns = [rerun(deploy, clients, now=pd.Timestamp("2026-11-23T06:00Z").to_pydatetime()),
              rerun(deploy, _clients(moved=20),
                    now=pd.Timestamp("2026-11-30T06:00Z").to_pydatetime())]
    return {"runs": runs, "models": models, "first": first, "second": second,
            "clients": clients, "reruns": reruns}


@pytest.fixture(scope="module")
def client(folders):
    with TestClient(create_app(folders["models"], folders["runs"], api_key=KEY)) as c:
        yield c


def labels(run, solution: str) -> pd.Series:
    """A solution's labels read from the run folder, by customer id as text."""
    table = run.solution(solution).labels()
    return pd.Series(table["segment"].to_numpy(), index=table["customer"].astype(str))


def segment_url(run, solution: str, segment: int) -> str:
    return f"{API}/runs/{run.path.name}/solutions/{solution}/segments/{segment}"


# ------------------------------------------------------------------ the key and the page

def test_the_page_is_open_and_loads_nothing_from_elsewhere(client):
    page = client.get("/dashboard")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "http://" not in html and "https://" not in html and "<script src" not in html
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'sha256-" in policy
    assert "connect-src 'self'" in policy and "unsafe-inline" not in policy
    assert "innerHTML" not in html and "insertAdjacentHTML" not in html


@pytest.mark.parametrize("method,path", [
    ("GET", f"{API}/runs"), ("GET", f"{API}/runs/x"), ("GET", f"{API}/runs/x/solutions/y"),
    ("GET", f"{API}/runs/x/solutions/y/segments/0"),
    ("GET", f"{API}/runs/x/solutions/y/segments/0/members.csv"),
    ("GET", f"{API}/compare?run_a=x&solution_a=y&run_b=x&solution_b=y"),
    ("GET", f"{API}/customer?id=R-00001"), ("POST", f"{API}/publish"),
    ("GET", f"{API}/models/weekly/history"), ("GET", "/dashboard/"),
])
def test_every_data_route_needs_the_key(client, method, path):
    for headers in ({}, {"X-API-Key": "wrong"}, {"Authorization": "Bearer " + KEY[:-1]}):
        response = client.request(method, path, headers=headers,
                                  json={"run": "x", "solution": "y", "name": "z"})
        assert response.status_code == 401, (path, headers)
        assert response.json()["error"].startswith("a valid API key is required")
    assert client.get(f"{API}/runs", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200


def test_the_dashboard_can_be_left_out_and_the_command_needs_a_key(folders, monkeypatch):
    from typer.testing import CliRunner

    from segmint.cli import app

    without = TestClient(create_app(folders["models"], folders["runs"], api_key=KEY,
                                    dashboard=False))
    assert without.get("/dashboard").status_code == 401  # an unknown path: the key first
    assert without.get(f"{API}/runs", headers=WITH_KEY).status_code == 404
    monkeypatch.delenv("SEGMINT_API_KEY", raising=False)
    result = CliRunner().invoke(app, ["dashboard", "--models", str(folders["models"]),
                                      "--runs", str(folders["runs"]), "--port", "1"])
    assert result.exit_code == 1 and "needs an API key" in result.output


# ------------------------------------------------------------------ runs and solutions

def test_runs_are_listed_with_date_customers_recommended_and_solutions(client, folders):
    listed = {r["id"]: r for r in client.get(f"{API}/runs", headers=WITH_KEY).json()}
    for run in (folders["first"], folders["second"]):
        entry = listed[run.path.name]
        assert entry["created"] == run.manifest["created"]
        assert entry["customers"] == 300
        assert entry["recommended"] == run.recommended
        assert entry["solutions"] == len(run.solutions())
    assert listed[folders["first"].path.name]["solutions"] == 2
    one = client.get(f"{API}/runs/{folders['first'].path.name}", headers=WITH_KEY).json()
    assert [r["solution"] for r in one["leaderboard"]] == ["kmeans_k2", "kmeans_k3"]
    assert one["features"] == ["balance", "visits", "plan"]
    # the page names each solution in words, as the run's leaderboard does
    board = folders["first"].leaderboard().set_index("solution")["description"]
    assert one["descriptions"] == board.to_dict()
    assert one["descriptions"]["kmeans_k3"].startswith("k-means, 3 segments")


def test_compare_two_runs_cross_tab_and_sizes_match_pandas(client, folders):
    first, second = folders["first"], folders["second"]
    body = client.get(f"{API}/compare", headers=WITH_KEY, params={
        "run_a": first.path.name, "solution_a": "kmeans_k3",
        "run_b": second.path.name, "solution_b": "kmeans_k4"}).json()
    a, b = labels(first, "kmeans_k3"), labels(second, "kmeans_k4")
    joined = pd.DataFrame({"a": a}).join(pd.DataFrame({"b": b}), how="inner")
    expected = pd.crosstab(joined["a"], joined["b"])
    table = body["crosstab"]
    assert table["rows"] == sorted(a.unique().tolist())
    assert table["columns"] == sorted(b.unique().tolist())
    assert table["counts"] == expected.loc[table["rows"], table["columns"]].to_numpy().tolist()
    assert (table["shared"], table["only_a"], table["only_b"]) == (300, 0, 0)
    for side, own in (("a", a), ("b", b)):
        sizes = {s["segment"]: s["size"] for s in body[side]["segments"]}
        assert sizes == own.value_counts().to_dict()
        assert sum(s["share"] for s in body[side]["segments"]) == pytest.approx(1.0)
    features = [f["name"] for f in body["a"]["features"]]
    assert features == ["balance", "visits", "plan"]
    # the mean of a feature per segment, counted again from the customer table
    customers = first.customers()
    customers.index = customers.index.astype(str)
    means = customers["balance"].groupby(a.loc[customers.index].to_numpy()).mean()
    for s in body["a"]["segments"]:
        assert s["mean_balance"] == pytest.approx(means[s["segment"]], rel=1e-9)


def test_compare_two_solutions_of_one_run(client, folders):
    first = folders["first"]
    body = client.get(f"{API}/compare", headers=WITH_KEY, params={
        "run_a": first.path.name, "solution_a": "kmeans_k2",
        "run_b": first.path.name, "solution_b": "kmeans_k3"}).json()
    a, b = labels(first, "kmeans_k2"), labels(first, "kmeans_k3")
    expected = pd.crosstab(a, b.loc[a.index])
    assert body["crosstab"]["counts"] == expected.to_numpy().tolist()
    assert sum(map(sum, body["crosstab"]["counts"])) == 300


# ------------------------------------------------------------------ a segment's members

def test_pages_are_disjoint_and_cover_the_segment_exactly(client, folders):
    first = folders["first"]
    own = labels(first, "kmeans_k3")
    segment = int(own.loc[ODD_ID])
    expected = own.index[own.to_numpy() == segment].tolist()
    url = segment_url(first, "kmeans_k3", segment)
    seen: list[str] = []
    page = client.get(url, headers=WITH_KEY, params={"per_page": 7}).json()
    assert page["total"] == len(expected) and page["pages"] == -(-len(expected) // 7)
    for number in range(1, page["pages"] + 1):
        body = client.get(url, headers=WITH_KEY, params={"per_page": 7, "page": number}).json()
        assert len(body["members"]) == (7 if number < page["pages"] else len(expected) - 7 * (number - 1))
        seen += [m["customer"] for m in body["members"]]
    assert seen == expected and len(set(seen)) == len(seen)  # the run's order, each once
    assert page["columns"] == ["customer", "balance", "visits", "plan"]
    customers = first.customers()
    row = page["members"][0]
    assert row["balance"] == customers.loc[row["customer"], "balance"]
    for params in ({"page": 0}, {"per_page": 0}, {"per_page": 501}, {"page": "two"},
                   {"page": page["pages"] + 1, "per_page": 7}):
        response = client.get(url, headers=WITH_KEY, params=params)
        assert response.status_code == 422, params
        assert response.json()["field"] in ("page", "per_page")


def test_search_keeps_the_ids_holding_the_text(client, folders):
    first = folders["first"]
    own = labels(first, "kmeans_k3")
    segment = int(own.loc["R-00010"])
    members = own.index[own.to_numpy() == segment]
    for q in ("R-0001", "r-0001", "bold</b>", "no such id"):
        body = client.get(segment_url(first, "kmeans_k3", segment), headers=WITH_KEY,
                          params={"q": q}).json()
        expected = [c for c in members if q.lower() in c.lower()]
        assert [m["customer"] for m in body["members"]] == expected and body["total"] == len(expected)
    assert "R-00010" in [c for c in members if "r-0001" in c.lower()]


def test_csv_holds_every_member_with_its_feature_values(client, folders):
    first = folders["first"]
    own = labels(first, "kmeans_k3")
    segment = int(own.loc[ODD_ID])
    response = client.get(segment_url(first, "kmeans_k3", segment) + "/members.csv",
                          headers=WITH_KEY)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    got = pd.read_csv(io.StringIO(response.text), dtype={"customer": str, "plan": str})
    expected = first.customers().loc[own.index[own.to_numpy() == segment]]
    assert got["customer"].tolist() == expected.index.astype(str).tolist()
    assert ODD_ID in got["customer"].tolist()
    assert got["balance"].to_numpy() == pytest.approx(expected["balance"].to_numpy(), rel=1e-15)
    assert got["plan"].tolist() == expected["plan"].astype(str).tolist()


def test_unknown_runs_solutions_segments_and_models_get_404_with_a_message(client, folders):
    run = folders["first"].path.name
    cases = {f"{API}/runs/no-such-run": "no run 'no-such-run'",
             f"{API}/runs/{run}/solutions/kmeans_k9": "no solution 'kmeans_k9'",
             f"{API}/runs/{run}/solutions/kmeans_k3/segments/7": "has no segment 7",
             f"{API}/runs/{run}/solutions/kmeans_k3/segments/7/members.csv": "has no segment 7",
             f"{API}/runs/..%2F..%2Fetc/solutions/x": "",
             f"{API}/models/nobody/history": "no published model 'nobody'",
             f"{API}/customer?id=nobody&run={run}": "customer 'nobody' is not in"}
    for path, message in cases.items():
        response = client.get(path, headers=WITH_KEY)
        assert response.status_code == 404, path
        assert message in response.json()["error"], path
        assert str(folders["runs"]) not in response.text  # no server paths to clients
    response = client.get(f"{API}/runs/{run}/solutions/kmeans_k3/segments/first", headers=WITH_KEY)
    assert response.status_code == 422  # a segment is named by its id, never by position


# ------------------------------------------------------------------ customers, publishing, migration

def test_a_customer_is_looked_up_in_every_solution_and_published_model(client, folders):
    first = folders["first"]
    published = ModelStore(folders["models"]).get("weekly").assignments()
    latest = published.set_index(published["customer"].astype(str))["segment"]
    for customer in ("R-00000", "R-00151", ODD_ID):
        body = client.get(f"{API}/customer", headers=WITH_KEY,
                          params={"id": customer, "run": first.path.name}).json()
        assert body["customer"] == customer
        assert {s["solution"]: s["segment"] for s in body["solutions"]} == {
            name: int(labels(first, name).loc[customer]) for name in first.solutions()}
        assert body["features"]["balance"] == first.customers().loc[customer, "balance"]
        weekly = [m for m in body["models"] if m["model"] == "weekly"]
        assert [m["segment"] for m in weekly] == [int(latest.loc[customer])]


def test_publish_then_models_lists_it(client, folders):
    first = folders["first"]
    sent = {"run": first.path.name, "solution": "kmeans_k2", "name": "from-dashboard"}
    response = client.post(f"{API}/publish", headers=WITH_KEY, json=sent)
    assert response.status_code == 201, response.text
    assert response.json() == {**sent, "version": 1}
    listed = client.get("/models", headers=WITH_KEY).json()
    assert ("from-dashboard", 1, "kmeans_k2") in [(m["name"], m["version"], m["solution"])
                                                  for m in listed]
    assert client.post(f"{API}/publish", headers=WITH_KEY, json=sent).json()["version"] == 2
    bad = client.post(f"{API}/publish", headers=WITH_KEY, json={**sent, "name": "../up"})
    assert bad.status_code == 422 and "not a model name" in bad.json()["error"]
    unknown = client.post(f"{API}/publish", headers=WITH_KEY, json={**sent, "solution": "nope",
                                                                    "name": "never"})
    assert unknown.status_code == 404 and not (folders["models"] / "never").exists()


def test_history_gives_each_reruns_transition_matrix(client, folders):
    body = client.get(f"{API}/models/weekly/history", headers=WITH_KEY).json()
    reruns = body["reruns"]
    assert [r["id"] for r in reruns] == [r.folder.name for r in folders["reruns"]]
    assert [r["mode"] for r in reruns] == ["score", "score"]
    # the second re-run's matrix, counted again from the two re-runs' scores
    before = folders["reruns"][0].scores.set_index("customer")["name"]
    after = folders["reruns"][1].scores.set_index("customer")["name"]
    expected = pd.crosstab(before, after.loc[before.index])
    matrix = reruns[1]["counts"]
    got = pd.DataFrame(matrix["values"], index=matrix["rows"], columns=matrix["columns"])
    for earlier in expected.index:
        for later in expected.columns:
            assert got.loc[earlier, later] == expected.loc[earlier, later], (earlier, later)
    moved = int(expected.to_numpy().sum() - np.trace(expected.loc[:, expected.index].to_numpy()))
    assert moved == 20 and "20" not in matrix["rows"]
    assert reruns[1]["summary"].startswith("300 customers earlier, 300 later")


# ------------------------------------------------------------------ the page in Chromium

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(folders):
    """The service with its dashboard, on 127.0.0.1 and a free port, in a thread."""
    import uvicorn

    port = _free_port()
    app = create_app(folders["models"], folders["runs"], api_key=KEY)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, access_log=False,
                                           log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=20)


def _cells(page, selector: str) -> list[list[str]]:
    """The text of a table's body cells (row headers included), row by row."""
    return page.eval_on_selector(selector, "t => [...t.tBodies[0].rows].map("
                                           "r => [...r.cells].map(c => c.textContent))")


def test_the_dashboard_in_chromium(server, folders, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip("no Chromium at /usr/bin/chromium")
    import httpx

    first, second = folders["first"], folders["second"]
    blocked: list[str] = []
    errors: list[str] = []
    refused: list[str] = []  # the console's note of the one 401 the wrong key gets

    def guard(route):
        url = route.request.url
        if url.startswith(("http://127.0.0.1:", "http://localhost:", "data:", "blob:")):
            route.continue_()
        else:
            blocked.append(url)
            route.abort()

    def console(message):
        if message.type == "error":
            (refused if "status of 401" in message.text else errors).append(message.text)

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            context = browser.new_context(accept_downloads=True, viewport={"width": 1400,
                                                                           "height": 1000})
            page = context.new_page()
            page.route("**/*", guard)
            page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
            page.on("console", console)
            expect = sync_api.expect

            def settle() -> None:  # every request the page made has been answered
                page.wait_for_selector("#app[aria-busy=false]", state="attached")

            page.goto(server + "/dashboard")
            expect(page.locator("h1")).to_have_text("segmint dashboard")
            page.fill("#key", "not-the-key")
            page.click("#key-form button")
            expect(page.locator("#error")).to_contain_text("The API key was refused")
            assert page.locator("#app").is_hidden()
            assert len(refused) == 1

            page.fill("#key", KEY)
            page.click("#key-form button")
            expect(page.locator("#app")).to_be_visible()
            expect(page.locator("#error")).to_be_empty()
            settle()
            runs_text = page.inner_text("#runs-out")
            assert first.path.name in runs_text and second.path.name in runs_text

            # compare k3 of the first run with k4 of the second
            for select, value in (("#a-run", first.path.name), ("#b-run", second.path.name)):
                page.select_option(select, value)
                settle()
            page.select_option("#a-solution", "kmeans_k3")
            page.select_option("#b-solution", "kmeans_k4")
            page.click("#compare-form button")
            page.wait_for_selector("#crosstab")
            a, b = labels(first, "kmeans_k3"), labels(second, "kmeans_k4")
            expected = pd.crosstab(a, b.loc[a.index])
            shown = _cells(page, "#crosstab")
            assert [[int(v.replace(",", "")) for v in row[1:-1]] for row in shown[:-1]] == \
                expected.to_numpy().tolist()
            assert [row[-1] for row in shown[:-1]] == [str(v) for v in expected.sum(axis=1)]
            page.screenshot(path=str(tmp_path / "compare.png"), full_page=True)

            # a segment, its pages, a search for the id that is markup, its CSV
            segment = int(a.loc[ODD_ID])
            page.select_option("#seg-run", first.path.name)
            settle()
            page.select_option("#seg-solution", "kmeans_k3")
            page.dispatch_event("#seg-solution", "change")
            settle()
            page.select_option("#seg-segment", str(segment))
            page.click("#segment-form button")
            page.wait_for_selector("#members")
            expect(page.locator("#page-info")).to_have_text(
                f"Page 1 of {-(-int((a == segment).sum()) // 50)}")
            one = [row[0] for row in _cells(page, "#members")]
            page.click("#next")
            expect(page.locator("#page-info")).to_contain_text("Page 2 of")
            two = [row[0] for row in _cells(page, "#members")]
            members = a.index[a.to_numpy() == segment].tolist()
            assert one == members[:50] and two == members[50:100] and not set(one) & set(two)

            page.fill("#search", "<b>")
            page.click("#search-form button[type=submit]")
            expect(page.locator("#page-info")).to_have_text("Page 1 of 1")
            assert [row[0] for row in _cells(page, "#members")] == [ODD_ID]
            assert page.locator("#members b").count() == 0  # shown as text, not as markup

            with page.expect_download() as caught:
                page.click("#download")
            download = caught.value
            got = pd.read_csv(download.path(), dtype={"customer": str})
            assert got["customer"].tolist() == members  # every member, not the search's
            assert download.suggested_filename.endswith(f"kmeans_k3_segment{segment}.csv")

            # one customer
            page.fill("#customer-id", ODD_ID)
            page.select_option("#customer-run", first.path.name)
            page.click("#customer-form button")
            page.wait_for_selector("#customer-out table")
            text = page.inner_text("#customer-out")
            assert f"Customer {ODD_ID}" in text and "weekly" in text
            assert page.locator("#customer-out b").count() == 0

            # publish, then the service's own GET /models lists it
            page.select_option("#publish-run", first.path.name)
            settle()
            page.select_option("#publish-solution", "kmeans_k3")
            page.fill("#publish-name", "from-browser")
            page.click("#publish-form button")
            expect(page.locator("#publish-out")).to_contain_text("as from-browser version 1")
            listed = httpx.get(server + "/models", headers=WITH_KEY).json()
            assert ("from-browser", 1, "kmeans_k3") in [(m["name"], m["version"], m["solution"])
                                                        for m in listed]

            # migration of the weekly model
            settle()
            page.select_option("#history-model", "weekly")
            page.click("#history-form button")
            expect(page.locator("#history-out h3")).to_have_count(2)
            assert page.locator("#history-out table").count() == 3  # the list and two matrices

            # accessible basics: every control labelled, headings never skip a level
            unlabelled = page.evaluate("[...document.querySelectorAll('input, select')]"
                                       ".filter(e => !e.labels || !e.labels.length).length")
            levels = page.evaluate("[...document.querySelectorAll('h1,h2,h3,h4')]"
                                   ".map(h => +h.tagName[1])")
            assert unlabelled == 0 and levels[0] == 1
            assert all(b - a <= 1 for a, b in zip(levels, levels[1:], strict=False))
            page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
            assert errors == [] and blocked == [], (errors, blocked)
        finally:
            browser.close()
    for name in ("compare.png", "dashboard.png"):
        shot = tmp_path / name
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
