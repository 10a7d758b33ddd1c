"""Fixtures shared by every test folder."""
from __future__ import annotations

from pathlib import Path

import pytest

#: ../shared/data beside the checkout; read in place, never copied into the repo.
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data folder; skips the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is absent (../shared/data is not beside the checkout)")
    return SHARED_DATA
