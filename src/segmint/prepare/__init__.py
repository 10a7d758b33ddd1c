"""Customer table -> the matrix that is clustered."""
from segmint.prepare.scaling import SCALERS, make_scaler

__all__ = ["SCALERS", "make_scaler"]
