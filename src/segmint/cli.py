"""The ``segmint`` command. It only parses arguments and calls the library."""
from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Raw customer data to customer segments people can act on.")
err = Console(stderr=True)
out = Console()

#: Exit codes: 1 a problem with the input, the spec or a run folder (one line says which);
#: 2 a command line the parser refuses (click's usage message); 130 interrupted;
#: 70 a bug in segmint (EX_SOFTWARE), its trace written to a file.
EXIT_BUG = 70

THREADS_HELP = "threads for the parallel steps (default: SEGMINT_THREADS, else the usable cores)"


@contextlib.contextmanager
def _progress():
    """A rich progress bar on a terminal; nothing when output is piped."""
    if not err.is_terminal:
        yield None
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TextColumn("{task.fields[what]}"), console=err,
                  transient=True) as bar:
        tasks: dict[str, int] = {}

        def update(stage: str, done: int, total: int, what: str) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total, what="")
            bar.update(tasks[stage], completed=done, total=total, what=what)
        yield update


def _fail(exc: Exception) -> None:
    from rich.text import Text

    # Text, not markup: a message may hold brackets ("[1, 2]") that markup would eat
    err.print(Text.assemble(("error:", "bold red"), " ", str(exc)), highlight=False,
              soft_wrap=True)
    raise typer.Exit(code=1)


@contextlib.contextmanager
def _guarded():
    """Every failure is one line and a non-zero exit: a SegmintError as it is; an interrupt as
    such; anything else (a bug) in a few words, with the full trace written to a file."""
    import signal
    import threading

    from segmint.errors import InternalError, SegmintError

    def terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # unwinds like Ctrl-C: temporary folders are removed

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    except InternalError as exc:  # a bug, caught by the API: say so
        err.print(f"error: {exc}", highlight=False, markup=False, soft_wrap=True)
        raise typer.Exit(code=EXIT_BUG) from None
    except SegmintError as exc:
        _fail(exc)
    except KeyboardInterrupt:
        err.print("interrupted: nothing was written (a run folder appears whole or not at all)",
                  highlight=False, markup=False)
        raise typer.Exit(code=130) from None
    except (typer.Exit, typer.Abort):
        raise
    except Exception as exc:  # a bug: say so in one line, keep the trace for a report
        from segmint._secrets import redact
        from segmint.errors import _trace_file

        err.print(f"error: unexpected {type(exc).__name__}: {redact(str(exc))[:300]} (this is a "
                  f"bug in segmint; the full trace is in {_trace_file(exc)})", highlight=False,
                  markup=False, soft_wrap=True)
        raise typer.Exit(code=EXIT_BUG) from None


def _summary(run) -> None:
    board = run.leaderboard()
    out.print(f"run folder: {run.path}")
    for note in run.manifest.get("notes", []):
        out.print(f"  note: {note}", highlight=False)
    info = run.feature_info()
    if info is not None:
        out.print("columns (type: what it became; see feature_info.csv for why):")
        for row in info.itertuples():
            out.print(f"  {row.column}: {row.type} -> {row.became}", highlight=False)
    _ways(board)
    out.print(f"solutions: {len(board)}; recommended: [bold]{run.recommended}[/]")
    for reason in run.manifest.get("reasons", []):
        out.print(f"  - {reason}", highlight=False)
    if run.recommended:
        prof = run.solution().profile()
        for _, row in prof.iterrows():
            badge = "  [Insiders]" if row.get("insiders") else ""
            out.print(f"  segment {row['segment']}: {row['name']} - {row['size']:,} customers "
                      f"({row['share']:.1%}){badge}", highlight=False)
    from segmint.cluster.rules import RULE_ALGORITHMS

    for name in board.loc[board["algorithm"].isin(RULE_ALGORITHMS), "solution"]:
        solution = run.solution(str(name))
        if solution.rule_based:
            prof = solution.profile().sort_values("size", ascending=False)
            sizes = ", ".join(f"{r['name']} {r['size']:,}" for _, r in prof.iterrows())
            out.print(f"rule-based {name} (for comparison): {sizes}", highlight=False)
    out.print(f"report: {run.report_path}")


def _ways(board) -> None:
    """Several ways of clustering (algorithms x spaces): their best solutions side by side."""
    from rich.table import Table

    from segmint.cluster import compare_ways

    ways = compare_ways(board)
    if len(ways) < 2:
        return
    table = Table(title="ways compared (own space | common space; DB lower, CH and silhouette "
                        "higher are better)", title_justify="left")
    table.add_column("best solution of each way", no_wrap=True)
    for column in ("DB", "CH", "sil.", "DB", "CH", "sil."):
        table.add_column(column, justify="right")
    for row in ways.itertuples():
        table.add_row(row.solution,
                      *(f"{v:.3f}" if name != "calinski_harabasz" else f"{v:,.0f}"
                        for name, v in (("davies_bouldin", row.davies_bouldin),
                                        ("calinski_harabasz", row.calinski_harabasz),
                                        ("silhouette", row.silhouette),
                                        ("davies_bouldin", row.common_davies_bouldin),
                                        ("calinski_harabasz", row.common_calinski_harabasz),
                                        ("silhouette", row.common_silhouette))))
    out.print(table)


@app.command("run")
def run_cmd(spec: Path = typer.Argument(..., help="the run spec (YAML)"),
            output: Path | None = typer.Option(None, "--output", "-o",
                                                  help="folder for the run (default: the spec's)"),
            verbose: bool = typer.Option(False, "--verbose", "-v"),
            threads: int | None = typer.Option(None, "--threads", min=1, help=THREADS_HELP)) -> None:
    """Run a spec: read, build the customer table, sweep, select, profile, report."""
    from segmint import RedactingFilter, run

    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING)
    for handler in logging.getLogger().handlers:  # what is logged is redacted, like what is written
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
    with _guarded():
        from segmint.spec import load_spec

        loaded = load_spec(spec)
        if output is not None:
            loaded = loaded.model_copy(update={"output": str(output)})
        with _progress() as progress:
            if loaded.deploy is not None:  # a scheduled re-run of a published model
                from segmint.deploy.schedule import rerun

                done = rerun(loaded, progress=progress, threads=threads)
            else:
                result = run(loaded, progress=progress, threads=threads)
        if loaded.deploy is not None:
            if done.run is not None:
                _summary(done.run)
            out.print(done.summary(), highlight=False)
            if done.migration is not None:
                _transitions(done.migration.counts)
            return
        _summary(result)


def _transitions(counts) -> None:
    """The transition matrix: where the previous run's segments went (rows) in this one."""
    from rich.table import Table

    table = Table(title="customers: previous segment (rows) -> this run's (columns)",
                  title_justify="left")
    table.add_column("")
    for column in counts.columns:
        table.add_column(str(column), justify="right")
    for name, row in counts.iterrows():
        table.add_row(str(name), *(f"{int(v):,}" for v in row))
    out.print(table)


@app.command()
def demo(output: Path = typer.Option(Path("runs"), "--output", "-o", help="folder for the run"),
         threads: int | None = typer.Option(None, "--threads", min=1, help=THREADS_HELP)) -> None:
    """Run the bundled demo: Insiders features + Intel's grid on UCI Online Retail."""
    from segmint import demo_spec, run

    with _guarded():
        with _progress() as progress:
            result = run(demo_spec(output), progress=progress, threads=threads)
        _summary(result)


@app.command()
def columns(data: Path = typer.Argument(..., help="a customer table file, or a spec (YAML)")) -> None:
    """Show how each column of a customer table is read and what it becomes, without running."""
    from rich.table import Table

    from segmint.pipeline import describe_columns

    with _guarded():
        info = describe_columns(data)
    table = Table("column", "type", "nulls", "distinct", "becomes", "why", show_lines=False)
    for row in info.itertuples():
        table.add_row(str(row.column), str(row.type), f"{row.nulls:,}", f"{row.distinct:,}",
                      str(row.became), str(row.reason))
    out.print(table)


@app.command()
def predict(run_dir: Path = typer.Argument(..., metavar="RUN", help="a run folder"),
            solution: str = typer.Argument(..., help="solution name, or 'recommended'"),
            input: Path = typer.Argument(..., help="transactions or a customer table"),
            output: Path | None = typer.Option(None, "--output", "-o",
                                                  help="write .csv or .parquet (default: print)")) -> None:
    """Assign customers to a saved solution's segments (ML.PREDICT's columns)."""
    import json

    from segmint import SegmintError, open_run
    from segmint.io import write_csv_atomic, write_parquet_atomic

    with _guarded():
        if output is not None and output.is_dir():
            raise SegmintError("is a folder; -o names the file to write (.csv or .parquet)",
                               file=str(output))
        if output is not None and not output.parent.is_dir():
            raise SegmintError("the folder to write into does not exist", file=str(output.parent))
        run = open_run(run_dir)
        scored = run.predict(input, None if solution == "recommended" else solution)
        if output is None:
            flat = scored.drop(columns="nearest_centroids_distance")
            sys.stdout.write(flat.to_csv(index=False))
            return
        try:
            if output.suffix == ".parquet":
                write_parquet_atomic(scored, output)
            else:
                nearest = scored["nearest_centroids_distance"].map(json.dumps)
                write_csv_atomic(scored.assign(nearest_centroids_distance=nearest), output)
        except OSError as exc:
            raise SegmintError(f"cannot be written ({exc.strerror})", file=str(output)) from None
        err.print(f"{len(scored):,} customers scored -> {output}")


models_app = typer.Typer(no_args_is_help=True, help="Published models: list, show, publish.")
app.add_typer(models_app, name="models")

MODELS_HELP = "the folder of published models (default: SEGMINT_MODELS, else ./models)"


def _store(models: Path | None):
    from segmint.deploy.models import ModelStore

    return ModelStore(models)


@models_app.command("list")
def models_list(models: Path | None = typer.Option(None, "--models", help=MODELS_HELP)) -> None:
    """Every published version: name, version, solution, segments, customers, when."""
    from rich.table import Table

    with _guarded():
        store = _store(models)
        found = store.list()
    if found.empty:
        err.print(f"no published models in {store.root} (segmint models publish RUN)")
        return
    table = Table("name", "version", "solution", "segments", "customers", "created", "run")
    for row in found.itertuples():
        if row.error is not None:
            table.add_row(str(row.name), str(row.version), f"damaged: {row.error}", "", "", "", "")
            continue
        table.add_row(str(row.name), str(row.version), str(row.solution), str(row.n_segments),
                      f"{row.customers:,}", str(row.created_at), str(row.run))
    out.print(table)


@models_app.command("show")
def models_show(name: str = typer.Argument(..., help="a published model's name"),
                version: int | None = typer.Option(None, "--version", min=1,
                                                      help="default: the newest"),
                models: Path | None = typer.Option(None, "--models", help=MODELS_HELP)) -> None:
    """A published model: its solution, features and fill rules, segments, metrics."""
    with _guarded():
        model = _store(models).get(name, version)
    info = model.info
    solution = info["solution"]
    out.print(f"{model.name} v{model.version}: {solution['description']} "
              f"({solution['name']}), published {info['created_at']} from run "
              f"{info['run']['id']}", highlight=False)
    out.print(f"  folder: {model.path}", highlight=False)
    out.print("features (type; what scoring does with a missing value):")
    for feature in info["features"]:
        out.print(f"  {feature['name']}: {feature['type']}; {feature['fill']}", highlight=False)
    out.print("segments:")
    for seg in info["segments"]:
        out.print(f"  {seg['segment']}: {seg['name']} - {seg['size']:,} customers "
                  f"({seg['share']:.1%})", highlight=False)
    metrics = ", ".join(f"{k} {v:.4g}" for k, v in info["metrics"].items()
                        if isinstance(v, (int, float)))
    out.print(f"metrics: {metrics}", highlight=False)


@models_app.command("publish")
def models_publish(run_dir: Path = typer.Argument(..., metavar="RUN", help="a run folder"),
                   solution: str | None = typer.Option(None, "--solution",
                                                          help="default: the run's recommended one"),
                   name: str | None = typer.Option(None, "--name",
                                                      help="the model's name (default: the spec's)"),
                   models: Path | None = typer.Option(None, "--models", help=MODELS_HELP)) -> None:
    """Publish a run's solution as the next version of a model."""
    with _guarded():
        model = _store(models).publish(run_dir, solution, name)
    out.print(f"published {model.name} v{model.version} "
              f"({model.info['solution']['name']}) -> {model.path}", highlight=False)


@models_app.command("history")
def models_history(name: str = typer.Argument(..., help="a published model's name"),
                   models: Path | None = typer.Option(None, "--models", help=MODELS_HELP)) -> None:
    """The scheduled re-runs of a model: when, score or re-fit, version, customers, new, lapsed."""
    from rich.table import Table

    from segmint.deploy.schedule import history

    with _guarded():
        found = history(models, name)
    if found.empty:
        err.print(f"no scheduled re-runs of {name} yet (a spec with deploy: {{model: {name}}})")
        return
    table = Table("when", "mode", "version", "customers", "new", "lapsed", "folder")
    for row in found.itertuples():
        table.add_row(*(str(v) for v in (row.when, row.mode, row.version, row.customers, row.new,
                                         row.lapsed, row.folder)))
    out.print(table)


@app.command()
def score(model: str = typer.Argument(..., help="a published model's name, or its version folder"),
          input: Path = typer.Argument(..., help="customers (a customer table) or raw input of the "
                                                 "model's kind (transactions)"),
          output: Path | None = typer.Option(None, "--output", "-o",
                                                help="scores: .parquet or .csv"),
          to: str | None = typer.Option(None, "--to", help="export the scores to a database: a "
                                        "SQLAlchemy URL (${VAR} filled from the environment), or "
                                        "'env' for SEGMINT_EXPORT_URL"),
          table: str = typer.Option("customer_segments", "--table", help="the table --to writes"),
          mode: str = typer.Option("replace", "--mode", help="--to: replace (the table appears "
                                   "whole) or upsert (by customer)"),
          version: int | None = typer.Option(None, "--version", min=1, help="default: the newest"),
          models: Path | None = typer.Option(None, "--models", help=MODELS_HELP),
          chunk_rows: int = typer.Option(200_000, "--chunk-rows", min=1,
                                         help="customers scored at a time")) -> None:
    """Score customers with a published model, in chunks (ML.PREDICT's columns), to a file,
    a database table, or both."""
    import tempfile

    import pandas as pd

    from segmint import SegmintError
    from segmint.deploy.models import PublishedModel
    from segmint.deploy.score import score_file

    with _guarded():
        if output is None and to is None:
            raise SegmintError("say where the scores go: -o FILE (.parquet or .csv), --to URL, "
                               "or both")
        folder = Path(model)
        published = PublishedModel(folder) if (folder / "model.json").is_file() \
            else _store(models).get(model, version)
        with contextlib.ExitStack() as stack:
            target = output
            if target is None:
                target = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "scores.parquet"
            with _progress() as progress:
                update = None if progress is None else \
                    (lambda d, t, w: progress("score", d, t, w))
                result = score_file(published, input, target, chunk_rows=chunk_rows,
                                    progress=update)
            sizes = ", ".join(f"{s}: {n:,}" for s, n in result.sizes.items())
            err.print(f"{result.customers:,} customers scored with {published.name} "
                      f"v{published.version} in {result.seconds:.1f} s"
                      + (f" -> {output}" if output is not None else "") + f" (segments {sizes})",
                      highlight=False)
            if to is not None:
                from segmint.deploy.export import export

                frame = pd.read_parquet(target) if target.suffix == ".parquet" else \
                    _scores_from_csv(target)
                done = export(frame, None if to == "env" else to, table=table, mode=mode,
                              model_version=f"{published.name} v{published.version}")
                err.print(f"exported {done.rows:,} rows to {done.target}"
                          + (f" table {done.table}" if done.table else "")
                          + f" ({done.mode}, {done.seconds:.1f} s)", highlight=False)


def _scores_from_csv(path: Path):
    """Scores written as CSV, read back for an export (the nearest list is JSON text there)."""
    import json

    import pandas as pd

    frame = pd.read_csv(path, dtype={"customer": str})
    frame["nearest_centroids_distance"] = frame["nearest_centroids_distance"].map(json.loads)
    return frame


@app.command()
def serve(models: Path | None = typer.Option(None, "--models", help=MODELS_HELP),
          runs: Path = typer.Option(Path("runs"), "--runs",
                                    help="the runs folder (GET /runs, recommendations)"),
          host: str = typer.Option("127.0.0.1", "--host"),
          port: int = typer.Option(8000, "--port", min=1, max=65535),
          api_key_file: Path | None = typer.Option(
              None, "--api-key-file", help="a file holding the API key (default: SEGMINT_API_KEY)"),
          max_body_mb: float = typer.Option(8.0, "--max-body-mb", min=0.001,
                                            help="largest request body accepted (413 beyond)"),
          max_rows: int = typer.Option(10_000, "--max-rows", min=1,
                                       help="most rows one /score request may hold (413 beyond)")
          ) -> None:
    """Serve scoring, models, segments, customers and runs over HTTP (FastAPI; an API key on
    every data route). OpenAPI schema at /openapi.json."""
    from segmint.deploy.models import models_root
    from segmint.deploy.service import serve as run_service

    with _guarded():
        run_service(models_root(models), runs, host=host, port=port, api_key_file=api_key_file,
                    max_body_bytes=int(max_body_mb * 1024 * 1024), max_rows=max_rows)


@app.command()
def dashboard(models: Path | None = typer.Option(None, "--models", help=MODELS_HELP),
              runs: Path = typer.Option(Path("runs"), "--runs", help="the runs folder to browse"),
              host: str = typer.Option("127.0.0.1", "--host"),
              port: int = typer.Option(8000, "--port", min=1, max=65535),
              api_key_file: Path | None = typer.Option(
                  None, "--api-key-file",
                  help="a file holding the API key (default: SEGMINT_API_KEY)")) -> None:
    """Serve the dashboard (runs, solutions side by side, segments and their members,
    customers, publishing, migration) with the service, at /dashboard; it asks for the API
    key once and loads nothing from elsewhere."""
    shown = f"[{host}]" if ":" in host else host
    err.print(f"starting; the dashboard will be at http://{shown}:{port}/dashboard (it asks "
              f"for the API key)", highlight=False)
    serve(models=models, runs=runs, host=host, port=port, api_key_file=api_key_file,
          max_body_mb=8.0, max_rows=10_000)


@app.command()
def report(run: Path = typer.Argument(..., help="a run folder"),
           output: Path | None = typer.Option(None, "--output", "-o",
                                              help="where the page goes (default: the run's "
                                                   "report.html)"),
           png: Path | None = typer.Option(None, "--png", help="also write every figure as a PNG "
                                           "file into this folder (needs kaleido, segmint's png "
                                           "extra, and Debian's chromium)"),
           max_points: int = typer.Option(5_000, "--max-points", min=100,
                                          help="customers drawn per projection at most (a "
                                               "seeded sample beyond)")) -> None:
    """Write a run's report again from its folder (after an upgrade, or elsewhere), and its
    figures as PNG files."""
    from segmint.report import write_pngs, write_report

    with _guarded():
        written = write_report(run, output, max_points=max_points)
        err.print(f"report: {written} ({written.stat().st_size / 1e6:.1f} MB)", highlight=False)
        if png is not None:
            paths = write_pngs(run, png, max_points=max_points)
            err.print(f"{len(paths)} figures as PNG in {png}", highlight=False)


def _recommend_summary(run) -> None:
    """The seed's comparisons (MSE against the naive guess, accuracy against all ones), the
    ranking measures beside popularity, and the head of the top-N table."""
    import pandas as pd
    from rich.table import Table

    metrics = run.metrics()
    mean = metrics[metrics["split"] == "mean"]
    k = run.manifest["k"]
    columns = [("rmse", "RMSE"), ("naive_mse", "naive MSE"), ("mse", "MSE"),
               ("accuracy", "accuracy"), ("all_ones_accuracy", "all-ones acc."),
               ("ndcg_at_k", f"nDCG@{k}"), ("precision_at_k", f"P@{k}"),
               ("recall_at_k", f"recall@{k}"), ("catalog_coverage", "coverage"),
               ("fit_seconds", "fit s")]
    shown = [(c, label) for c, label in columns if c in mean.columns and mean[c].notna().any()]
    table = Table("model", *[label for _, label in shown],
                  title=f"mean over splits ({run.manifest['split']})")
    for row in mean.itertuples(index=False):
        values = row._asdict()
        table.add_row(str(values["model"]), *["" if pd.isna(values[c]) else f"{values[c]:.4f}"
                                               for c, _ in shown])
    wide = out if out.is_terminal else Console(width=160)  # piped: every column whole
    wide.print(table)
    for row in mean.itertuples(index=False):
        values = row._asdict()
        if pd.notna(values.get("mse")) and pd.notna(values.get("naive_mse")) \
                and values["model"] != "global_mean":  # the naive guess itself
            out.print(f"{values['model']}: MSE {values['mse']:.4f} against the naive guess's "
                      f"{values['naive_mse']:.4f}", highlight=False)
        if pd.notna(values.get("accuracy")) and pd.notna(values.get("all_ones_accuracy")):
            out.print(f"{values['model']}: accuracy {values['accuracy']:.4f} against predicting all "
                      f"ones {values['all_ones_accuracy']:.4f}", highlight=False)
    recs = run.recommendations()
    n = run.manifest["top_n"]
    out.print(f"top-{n} for {recs['customer'].nunique():,} customers ({len(recs):,} rows) by "
              f"{run.manifest['recommend_with']}; first rows:")
    head = Table(*[str(c) for c in recs.columns])
    for row in recs.head(10).itertuples(index=False):
        head.add_row(*[f"{v:.4f}" if isinstance(v, float) else str(v) for v in row])
    wide.print(head)
    out.print(f"run folder: {run.path}")


@app.command("recommend")
def recommend_cmd(spec: Path = typer.Argument(..., help="the spec (YAML) with a recommend: section"),
                  output: Path | None = typer.Option(None, "--output", "-o",
                                                        help="folder for the run (default: the spec's)")
                  ) -> None:
    """Recommend: models trained and evaluated beside baselines, top-N for every customer."""
    from segmint.recommend.pipeline import recommend

    with _guarded():
        with _progress() as progress:
            run = recommend(spec, output=output, progress=progress)
        _recommend_summary(run)


def _print_result(result, max_rows: int) -> None:
    """One statement's outcome: a table for a query (first ``max_rows`` rows), else a line."""
    from rich.table import Table
    from rich.text import Text

    head = result.statement.strip().splitlines()[0][:90]
    out.print(Text.assemble((f"-- line {result.line}: ", "dim"), (head, "bold")), highlight=False,
              soft_wrap=True)
    if result.frame is None:
        out.print(Text(f"{result.message} ({result.seconds:.2f} s)"), highlight=False, soft_wrap=True)
        return
    frame = result.frame
    if not out.is_terminal:  # piped or captured: every column in full, as text
        import pandas as pd

        shown = frame.head(max_rows)
        for i in range(shown.shape[1]):  # a missing value is NULL, as in the terminal's table
            column = shown.iloc[:, i]
            missing = column.isna()
            if missing.any() and not pd.api.types.is_float_dtype(column):
                shown = shown.copy()
                shown.isetitem(i, column.astype(object).where(~missing, "NULL"))
        with pd.option_context("display.max_columns", None, "display.width", 250,
                               "display.max_colwidth", 80):
            text = shown.to_string(index=False, na_rep="NULL") if len(shown.columns) and \
                len(shown) else "  ".join(str(c) for c in frame.columns)  # not "Empty DataFrame"
            sys.stdout.write(text + "\n")
    else:
        table = Table(*[str(c) for c in frame.columns], show_lines=False)
        for row in frame.head(max_rows).itertuples(index=False):
            table.add_row(*[_cell(v) for v in row])
        out.print(table)
    more = f", {len(frame) - max_rows:,} more not shown (--max-rows)" if len(frame) > max_rows else ""
    out.print(Text(f"{len(frame):,} rows{more} ({result.seconds:.2f} s)"), highlight=False,
              soft_wrap=True)


def _cell(value) -> str:
    import math

    import pandas as pd

    if isinstance(value, float):
        return "NULL" if math.isnan(value) else f"{value:.6g}"
    if value is None or value is pd.NA:
        return "NULL"
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _statements_from_prompt():
    """Statements typed at a prompt, each ended by ``;`` (an empty line at the start quits)."""
    lines: list[str] = []
    while True:
        try:
            line = input("segmint> " if not lines else "     ...> ")
        except EOFError:
            if lines:
                yield "\n".join(lines)
            return
        if not lines and line.strip().lower() in {"", "quit", "exit", "\\q"}:
            return
        lines.append(line)
        if line.rstrip().endswith(";"):
            yield "\n".join(lines)
            lines = []


@app.command("sql")
def sql_cmd(database: Path | None = typer.Argument(None, help="DuckDB database file (created if "
                                                   "missing; models go beside it in "
                                                   "<file>.models/); default: in memory"),
            file: Path | None = typer.Option(None, "--file", "-f", help="a script of statements"),
            execute: str | None = typer.Option(None, "--execute", "-e", help="statements to run"),
            tables: list[str] = typer.Option([], "--table", "-t",
                                             help="NAME=FILES: register an export, e.g. "
                                                  "'ds.ga_sessions_*=data/ga_sessions_*.parquet'"),
            max_rows: int = typer.Option(20, "--max-rows", help="rows printed per result")) -> None:
    """Run BigQuery SQL and BigQuery ML's k-means statements on DuckDB, printing each result.

    Without -f or -e: statements from a prompt (a terminal) or from standard input.
    """
    import segmint.sql

    with _guarded():
        base = file.parent if file is not None else None
        if file is not None:
            try:
                script = file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                from segmint.errors import InputError

                raise InputError(f"cannot read the script ({exc})", file=str(file)) from None
        with segmint.sql.connect(database, base=base) as con:
            for spec in tables:
                name, sep, paths = spec.partition("=")
                if not sep or not name or not paths:
                    from segmint.errors import SpecError

                    raise SpecError(f"--table takes NAME=FILES; got {spec!r}")
                # a path typed on the command line is the shell's, from the working directory
                # (the session takes relative paths from the script's folder, for its statements)
                con.register_export(name.strip(), str(Path(paths.strip()).expanduser().absolute()))
            prompt = file is None and execute is None and sys.stdin.isatty()
            if file is not None or execute is not None:
                scripts = [s for s in (script if file is not None else None, execute) if s]
            else:
                scripts = _statements_from_prompt() if prompt else [sys.stdin.read()]
            for text in scripts:
                if prompt:
                    try:  # at the prompt, an error is reported and the session goes on
                        for result in con.iter_run(text):
                            _print_result(result, max_rows)
                    except segmint.SegmintError as exc:
                        from rich.text import Text

                        err.print(Text.assemble(("error:", "bold red"), " ", str(exc)))
                    continue
                for result in con.iter_run(text):
                    _print_result(result, max_rows)


if __name__ == "__main__":  # pragma: no cover
    app()
