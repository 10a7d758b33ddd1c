"""What every benchmark prints first: this machine, and the versions of what it measures."""
from __future__ import annotations

import os
import platform
from importlib.metadata import PackageNotFoundError, version


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            return next(line.split(":", 1)[1].strip() for line in info
                        if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "?"


def machine(packages: list[str], *, threads: int | None = None, extra: str = "") -> str:
    """``Linux x86_64, 2 cores (AMD EPYC ...)[, N used]; Python 3.11.7, numpy 2.4, ...``."""
    used = f", {threads} used" if threads is not None else ""

    def of(name: str) -> str:
        try:
            return f"{name} {version(name)}"
        except PackageNotFoundError:
            return f"{name} (not installed)"

    text = (f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores ({cpu_name()}){used}; "
            f"Python {platform.python_version()}, " + ", ".join(of(p) for p in packages))
    return text + (f"; {extra}" if extra else "")
