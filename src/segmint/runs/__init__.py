"""The run folder: its layout and format version, writing it, and the objects a user holds."""
from segmint.runs._layout import FORMAT_VERSION
from segmint.runs._run import Run, SavedSolution, open_run

__all__ = ["FORMAT_VERSION", "Run", "SavedSolution", "open_run"]
