"""Reading sources into typed raw tables, and writing outputs atomically."""
from __future__ import annotations

from segmint.io._readers import LARGEST_VALUE, is_table, read_frame, read_headers, read_source
from segmint.io._writers import atomic_dir, write_csv_atomic, write_parquet_atomic, write_text_atomic

__all__ = ["LARGEST_VALUE", "read_source", "read_frame", "read_headers", "is_table", "write_parquet_atomic",
           "write_csv_atomic", "write_text_atomic", "atomic_dir"]
