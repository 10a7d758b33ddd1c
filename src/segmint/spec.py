"""The run spec: one YAML file, read into typed models, validated in one place."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from segmint.errors import SpecError

__all__ = [
    "RunSpec", "SourceSpec", "RecipeSpec", "CleaningSpec", "SweepSpec", "AlgorithmSpec",
    "SelectSpec", "load_spec", "ROLES",
]

#: The roles a transactions source maps its columns to.
ROLES = ("customer", "invoice", "date", "quantity", "price", "product", "country")

#: Header names seen in the wild for each role, tried when the spec maps none.
DEFAULT_COLUMN_NAMES: dict[str, tuple[str, ...]] = {
    "customer": ("CustomerID", "Customer ID", "customer_id", "customer"),
    "invoice": ("InvoiceNo", "Invoice", "invoice_no", "invoice"),
    "date": ("InvoiceDate", "invoice_date", "date"),
    "quantity": ("Quantity", "quantity"),
    "price": ("UnitPrice", "Price", "unit_price", "price"),
    "product": ("StockCode", "stock_code", "product"),
    "country": ("Country", "country"),
}

SCALINGS = ("standard", "minmax", "robust", "log", "none")
ALGORITHMS = ("kmeans", "minibatch_kmeans", "dbscan", "hdbscan", "gaussian_mixture",
              "agglomerative", "birch")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SourceSpec(_Model):
    """Where the raw table comes from. Exactly one of path / url / duckdb."""

    path: str | None = None
    format: Literal["auto", "csv", "tsv", "parquet", "excel", "ndjson"] = "auto"
    encoding: str | None = None  # None: sniffed (utf-8, else windows-1252)
    delimiter: str | None = None  # None: sniffed
    sheet: str | int | None = None
    dayfirst: bool = False  # read 01/02/2011 as 1 February (dates are month-first by default)
    url: str | None = None  # SQLAlchemy URL
    duckdb: str | None = None  # DuckDB database file (":memory:" allowed with query)
    table: str | None = None
    query: str | None = None
    columns: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_kind(self) -> "SourceSpec":
        kinds = [k for k in ("path", "url", "duckdb") if getattr(self, k)]
        if len(kinds) != 1:
            raise ValueError("source needs exactly one of 'path', 'url' or 'duckdb'")
        if self.url and not self.query and not self.table:
            raise ValueError("a 'url' source needs a 'query' or a 'table'")
        if self.duckdb and not self.query and not self.table:
            raise ValueError("a 'duckdb' source needs a 'query' or a 'table'")
        bad = sorted(set(self.columns) - set(ROLES))
        if bad:
            raise ValueError(f"unknown column roles {bad}; roles are {list(ROLES)}")
        return self


class CleaningSpec(_Model):
    """The Insiders notebook's cleaning steps; each can be switched off."""

    impute_customer: bool = False
    drop_non_product_codes: bool = False
    min_unit_price: float | None = None
    drop_customers: list[str] = Field(default_factory=list)
    drop_countries: list[str] = Field(default_factory=list)

    @field_validator("drop_customers", mode="before")
    @classmethod
    def _as_str(cls, v: Any) -> Any:
        return [str(int(x)) if isinstance(x, float) and x.is_integer() else str(x) for x in (v or [])]


class RecipeSpec(_Model):
    kind: Literal["transactions", "table"] = "transactions"
    features: str = "insiders"  # a name from segmint.recipes.FEATURE_SETS
    cleaning: CleaningSpec = Field(default_factory=CleaningSpec)
    id_column: str | None = None  # for kind=table: the customer id column
    feature_columns: list[str] | None = None  # for kind=table: None = every numeric column


class AlgorithmSpec(_Model):
    name: Literal[ALGORITHMS]  # type: ignore[valid-type]
    grid: dict[str, list[Any]] = Field(default_factory=dict)

    @field_validator("grid", mode="before")
    @classmethod
    def _listify(cls, v: Any) -> Any:
        return {k: (x if isinstance(x, list) else [x]) for k, x in (v or {}).items()}


class SweepSpec(_Model):
    scalings: list[Literal[SCALINGS]] = Field(default_factory=lambda: ["standard"])  # type: ignore[valid-type]
    algorithms: list[AlgorithmSpec] = Field(default_factory=lambda: [
        AlgorithmSpec(name="kmeans", grid={"n_clusters": list(range(2, 11))})])
    silhouette_sample: int = 20_000
    # Fitted on at most this many rows where an algorithm is quadratic (agglomerative).
    max_rows_quadratic: int = 20_000


class SelectSpec(_Model):
    min_cluster_share: float = 0.01
    max_noise_share: float = 0.25
    stability_top: int = 3
    stability_resamples: int = 10
    stability_fraction: float = 0.8


class ProfileSpec(_Model):
    revenue: str | None = None  # None: gross_revenue or Amount when present


class RunSpec(_Model):
    name: str = "run"
    seed: int = 0
    source: SourceSpec
    recipe: RecipeSpec = Field(default_factory=RecipeSpec)
    sweep: SweepSpec = Field(default_factory=SweepSpec)
    select: SelectSpec = Field(default_factory=SelectSpec)
    profile: ProfileSpec = Field(default_factory=ProfileSpec)
    output: str = "runs"

    @field_validator("name")
    @classmethod
    def _safe_name(cls, v: str) -> str:
        if not v or any(c in v for c in "/\\:") or v.startswith("."):
            raise ValueError(f"name {v!r} must be a plain folder name")
        return v


def load_spec(path_or_dict: str | Path | dict, *, base: Path | None = None) -> RunSpec:
    """Read and validate a run spec from a YAML file or a dict.

    Relative source paths are taken relative to the spec file's folder (or ``base``).
    """
    file = None
    if isinstance(path_or_dict, dict):
        raw = path_or_dict
    else:
        file = Path(path_or_dict)
        if not file.is_file():
            raise SpecError("spec file not found", file=str(file))
        try:
            raw = yaml.safe_load(file.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise SpecError(f"not valid YAML: {exc}", file=str(file)) from None
        base = base or file.parent
    if not isinstance(raw, dict):
        raise SpecError("a spec is a YAML mapping", file=None if file is None else str(file))
    try:
        spec = RunSpec.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise SpecError(f"{loc}: {first['msg']}", file=None if file is None else str(file)) from None
    if base is not None and spec.source.path and not Path(spec.source.path).is_absolute():
        spec.source.path = str((base / spec.source.path).resolve())
    if base is not None and spec.source.duckdb and spec.source.duckdb != ":memory:" \
            and not Path(spec.source.duckdb).is_absolute():
        spec.source.duckdb = str((base / spec.source.duckdb).resolve())
    return spec
