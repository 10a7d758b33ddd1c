"""Scheduled re-runs of a published model, their history, and how customers moved.

A spec with a ``deploy`` section maintains a published model. ``segmint run spec.yaml`` (a
cron job or a systemd timer, see the README) then, on the new data:

- ``mode: score`` scores every customer with the newest published version;
- ``mode: refit`` runs the whole spec (a new run folder), matches the recommended solution's
  segments to the published version's customers (:mod:`segmint.deploy.migration`; by members,
  else centroids) and publishes it as the next version with the matched segments keeping
  their ids and names, so "Insiders" stays "Insiders". The first re-fit publishes version 1;

and in both modes keeps the re-run in ``<models>/<name>/history/<when>-v<N>/``:

- ``scores.parquet``: customer, segment, name, and revenue when the recipe has it;
- ``migration/``: the transition matrix since the previous re-run (or since publishing):
  counts and revenue, with new and lapsed customers (row sums are the previous segment sizes);
- ``rerun.json``: when, which version, score or re-fit, the run folder, sizes, the export.

The history folder appears whole or not at all; the scores are exported
(:func:`segmint.deploy.export.export`) when the spec says where.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from segmint.deploy.models import ASSIGNMENTS
from segmint.errors import ModelError, SpecError, public
from segmint.runs import _layout as L

__all__ = ["rerun", "Rerun", "history", "latest_scores"]

log = logging.getLogger(__name__)

HISTORY = "history"  # <models>/<name>/history/<when>-v<N>/
SCORES = "scores.parquet"
MIGRATION = "migration"
RERUN = "rerun.json"


@dataclasses.dataclass
class Rerun:
    """What one scheduled re-run did."""

    folder: Path  # its history folder
    model: Any  # the PublishedModel it scored with (a re-fit: the version it published)
    scores: pd.DataFrame  # customer, segment, name (, revenue)
    migration: Any  # deploy.migration.Migration since the previous re-run; None for the first
    run: Any = None  # a re-fit's Run
    exported: Any = None  # deploy.export.ExportResult

    def summary(self) -> str:
        lines = [f"{self.model.name} v{self.model.version}: {len(self.scores):,} customers "
                 f"scored -> {self.folder}"]
        sizes = self.scores.groupby(["segment", "name"]).size()
        lines += [f"  segment {s}: {n} - {c:,} customers ({c / max(len(self.scores), 1):.1%})"
                  for (s, n), c in sizes.items()]
        if self.migration is not None:
            lines.append("since the previous run:")
            lines += ["  " + line for line in self.migration.summary().splitlines()]
        if self.exported is not None:
            lines.append(f"exported {self.exported.rows:,} rows to {self.exported.target}"
                         + (f" table {self.exported.table}" if self.exported.table else ""))
        return "\n".join(lines)


def _history(root: Path, name: str) -> list[Path]:
    folder = Path(root) / name / HISTORY
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir()
                  if p.is_dir() and not p.name.startswith(".") and (p / SCORES).is_file())


def latest_scores(root: Path, name: str) -> pd.DataFrame | None:
    """customer, segment, name of the newest scheduled re-run of model ``name`` (None when
    there has been none)."""
    runs = _history(root, name)
    if not runs:
        return None
    return pd.read_parquet(runs[-1] / SCORES, columns=["customer", "segment", "name"])


def history(root: str | Path | None, name: str) -> pd.DataFrame:
    """One row per scheduled re-run of model ``name``, oldest first: folder, when, mode,
    version, customers, new, lapsed."""
    from segmint.deploy.models import models_root

    rows = []
    for folder in _history(models_root(root), name):
        try:
            said = json.loads((folder / RERUN).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            said = {}
        rows.append({"folder": str(folder), "when": said.get("when"), "mode": said.get("mode"),
                     "version": said.get("version"), "customers": said.get("customers"),
                     "new": said.get("new_customers"), "lapsed": said.get("lapsed_customers")})
    return pd.DataFrame(rows, columns=["folder", "when", "mode", "version", "customers", "new",
                                       "lapsed"])


@public
def rerun(spec: Any, source: Any = None, *, progress: Any = None, threads: int | None = None,
          now: dt.datetime | None = None) -> Rerun:
    """Run a spec's scheduled re-run (its ``deploy`` section) on ``source`` (default: the
    spec's source). See the module's docstring for what it does and writes.

    Parameters
    ----------
    spec : RunSpec, YAML path or dict, with a ``deploy`` section
    source : the new data (a path or a table in memory); None: the spec's source
    progress : as :func:`segmint.run`'s
    threads : as :func:`segmint.run`'s
    now : the re-run's time (default: the clock's, UTC); names its history folder

    Returns
    -------
    Rerun
    """
    from segmint.deploy.models import ModelStore
    from segmint.spec import RunSpec, load_spec

    spec = spec if isinstance(spec, RunSpec) else load_spec(spec)
    if spec.deploy is None:
        raise SpecError("the spec has no 'deploy' section (deploy: {model: NAME, mode: score|refit})")
    deploy = spec.deploy
    store = ModelStore(deploy.models)
    now = now or dt.datetime.now(dt.UTC)
    versions = store.versions(deploy.model)
    previous = _previous(store, deploy.model)
    if deploy.mode == "score":
        if not versions:
            raise ModelError(f"no published model {deploy.model!r} to score with: publish one "
                             f"(segmint models publish RUN --name {deploy.model}) or set "
                             f"deploy.mode: refit", file=str(store.root))
        model = store.get(deploy.model)
        table = model.scorer.customer_table(spec.source if source is None else source)
        scores = model.scorer.score_rows(table[model.features]).frame()
        revenue = _revenue(table, model.info.get("revenue"))
        run, match, native = None, None, None
    else:
        model, run, scores, revenue, match, native = _refit(spec, source, store, previous,
                                                            progress=progress, threads=threads)
    scores = scores[["customer", "segment", "name"]].copy()
    if revenue is not None:
        scores["revenue"] = scores["customer"].map(revenue).astype("float64")
    migration = None if previous is None else _migration(previous, scores, match, native)
    exported = None
    if deploy.export is not None:
        exported = _export(scores, model, deploy.export, now)
    folder = _write(store, model, deploy.mode, scores, migration, run, exported, now)
    if run is not None and migration is not None:  # the re-fit's report shows who moved
        _report_migration(run.path, migration)
    done = Rerun(folder=folder, model=model, scores=scores, migration=migration, run=run,
                 exported=exported)
    log.info("re-run of %s v%d: %d customers -> %s", model.name, model.version, len(scores), folder)
    return done


@dataclasses.dataclass
class _Previous:
    scores: pd.DataFrame  # customer, segment, name (, revenue)
    names: dict[int, str]
    version: int


def _previous(store: Any, name: str) -> _Previous | None:
    """The segments customers were in last: the newest re-run's scores, else the newest
    version's customers at publishing; None when nothing was published."""
    runs = _history(store.root, name)
    if runs:
        said = json.loads((runs[-1] / RERUN).read_text(encoding="utf-8"))
        scores = pd.read_parquet(runs[-1] / SCORES)
        version = int(said.get("version", 0))
    elif store.versions(name):
        model = store.get(name)
        scores = pd.read_parquet(model.path / ASSIGNMENTS)
        version = model.version
        if model.info.get("revenue"):
            run_customers = Path(model.info["run"]["path"]) / L.CUSTOMERS
            if run_customers.is_file():  # the publishing run's revenue, when it is still there
                table = pd.read_parquet(run_customers)
                revenue = table.set_index(table["customer"].astype(str))[model.info["revenue"]]
                scores["revenue"] = scores["customer"].astype(str).map(revenue)
    else:
        return None
    scores["customer"] = scores["customer"].astype(str)
    names = dict(zip(scores["segment"].astype(int), scores["name"].astype(str), strict=False))
    return _Previous(scores=scores, names=names, version=version)


def _refit(spec: Any, source: Any, store: Any, previous: _Previous | None, *, progress: Any,
           threads: int | None
           ) -> tuple[Any, Any, pd.DataFrame, pd.Series | None, Any, tuple[pd.Series, dict[int, str]]]:
    """Run the spec, match its recommended solution's segments to the previous ones, publish
    the next version with the matched ids and names. Returns the model, the run, the scores
    (published ids), the revenue, the match and the solution's own labels and names."""
    import segmint
    deploy = spec.deploy
    run = segmint.run(spec if source is None else source, None if source is None else spec,
                      progress=progress, threads=threads)
    chosen = run.solution()
    labels = chosen.labels()
    labels["customer"] = labels["customer"].astype(str)
    profile = chosen.profile()
    own_names = {int(s): str(n) for s, n in zip(profile["segment"], profile["name"], strict=True)}
    match = None
    relabel: dict[int, int] = {}
    names: dict[int, str] = {}
    if previous is not None:
        earlier = previous.scores.set_index("customer")["segment"].astype("int64")
        later = labels.set_index("customer")["segment"].astype("int64")
        match = _match(deploy, chosen, earlier, later, previous, own_names)
        relabel = {int(k): int(v) for k, v in match.mapping.items()}
        names = {int(k): str(v) for k, v in match.names.items()}
    model = store.publish(run, chosen.name, deploy.model, relabel=relabel, names=names)
    scores = pd.read_parquet(model.path / ASSIGNMENTS)
    table = run.customers()
    revenue = _revenue(table, run.manifest.get("revenue"))
    native = (labels.set_index("customer")["segment"].astype("int64"), own_names)
    return model, run, scores, revenue, match, native


def _match(deploy: Any, chosen: Any, earlier: pd.Series, later: pd.Series, previous: _Previous,
           own_names: dict[int, str]) -> Any:
    """The re-fit's segments matched to the previous ones by their members: the same
    customers, which is what a marketer means by the same segment. A segment sharing too few
    (Jaccard at most ``deploy.min_jaccard``) is a new segment with a new id and its own name."""
    from segmint.deploy.migration import MIN_SHARED, match_members

    shared = len(earlier.index.intersection(later.index)) / max(min(len(earlier), len(later)), 1)
    if shared < MIN_SHARED:
        log.warning("only %.0f%% of customers are in both the previous and this run: the segments "
                    "are matched by few members", 100 * shared)
    return match_members(earlier, later, earlier_names=previous.names, later_names=own_names,
                         min_jaccard=deploy.min_jaccard)


def _migration(previous: _Previous, scores: pd.DataFrame, match: Any,
               native: tuple[pd.Series, dict[int, str]] | None) -> Any:
    """Where the previous run's customers are now. A re-fit's migration is taken from its own
    labels through the match (so it says which segment matched which, and how well); a
    scoring's labels are the model's ids already."""
    from segmint.deploy.migration import transitions

    earlier = previous.scores.set_index("customer")
    later = scores.set_index("customer")
    revenue = later["revenue"] if "revenue" in later else None
    earlier_revenue = earlier["revenue"] if "revenue" in earlier else None
    if match is not None and native is not None:
        labels, own_names = native
        return transitions(earlier["segment"].astype("int64"), labels,
                           earlier_names=previous.names, later_names=own_names,
                           earlier_revenue=earlier_revenue, later_revenue=revenue, match=match)
    names = dict(zip(later["segment"].astype(int), later["name"].astype(str), strict=False))
    return transitions(earlier["segment"].astype("int64"), later["segment"].astype("int64"),
                       earlier_names=previous.names, later_names=names,
                       earlier_revenue=earlier_revenue, later_revenue=revenue, match=None)


def _revenue(table: pd.DataFrame, column: Any) -> pd.Series | None:
    if not column or column not in table.columns:
        return None
    values = pd.to_numeric(table[column], errors="coerce").astype("float64")
    return pd.Series(values.to_numpy(), index=table.index.astype(str))


def _export(scores: pd.DataFrame, model: Any, said: Any, now: dt.datetime) -> Any:
    from segmint.deploy.export import export

    return export(scores, said.url, table=said.table, mode=said.mode,
                  model_version=f"{model.name} v{model.version}", scored_at=now)


def _report_migration(run: Path, migration: Any) -> None:
    """Add the migration to the re-fit's run folder and write its report again with it."""
    from segmint.report import write_report
    from segmint.runs import _layout as L

    migration.write(run / L.MIGRATION, overwrite=True)
    write_report(run)


def _write(store: Any, model: Any, mode: str, scores: pd.DataFrame, migration: Any, run: Any,
           exported: Any, now: dt.datetime) -> Path:
    from segmint._secrets import redact_obj
    from segmint.io import atomic_dir
    from segmint.io._writers import write_parquet

    folder = store.root / model.name / HISTORY
    stamp = now.strftime("%Y%m%d-%H%M%S")
    final = folder / f"{stamp}-v{model.version}"
    n = 2
    while final.exists():
        final = folder / f"{stamp}-{n}-v{model.version}"
        n += 1
    with atomic_dir(final) as tmp:
        write_parquet(scores, tmp / SCORES, index=False)
        said: dict[str, Any] = {
            "when": now.isoformat(timespec="seconds"), "mode": mode, "model": model.name,
            "version": model.version, "customers": len(scores),
            "sizes": {str(k): int(v) for k, v in scores["segment"].value_counts().sort_index().items()},
            "run": None if run is None else str(run.path),
        }
        if migration is not None:
            migration.write(tmp / MIGRATION)
            said.update(new_customers=len(migration.new_customers),
                        lapsed_customers=len(migration.lapsed_customers),
                        migration=migration.to_dict())
        if exported is not None:
            said["export"] = {"target": exported.target, "table": exported.table,
                              "mode": exported.mode, "rows": exported.rows}
        (tmp / RERUN).write_text(json.dumps(redact_obj(said), indent=1, default=str),
                                 encoding="utf-8")
    return final
