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


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_url():
    """A real PostgreSQL server on 127.0.0.1 for the session (initdb + pg_ctl as the
    ``postgres`` user when run as root); yields a SQLAlchemy URL and stops the server after."""
    import glob
    import os
    import shutil
    import subprocess

    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins:
        pytest.skip("PostgreSQL server binaries are absent (apt-get install postgresql)")
    bindir = Path(bins[-1]).parent
    import tempfile

    # not under pytest's tmp folder: that one is private to root, and the server runs as postgres
    root = Path(tempfile.mkdtemp(prefix="segmint-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    subprocess.run([*as_user, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
                    "--no-sync"], check=True, capture_output=True)
    subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-w", "-l", str(root / "log"),
                    "-o", f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off",
                    "start"], check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"],
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
