"""Customer table -> the matrix that is clustered."""
from segmint.prepare.representation import (
    MixedInput,
    Representation,
    make_representation,
    model_input,
    prepare,
    prepare_mixed,
    prepared_names,
    represent,
    what_columns_became,
)
from segmint.prepare.scaling import SCALERS, make_scaler

__all__ = ["SCALERS", "MixedInput", "Representation", "make_representation", "make_scaler",
           "model_input", "prepare", "prepare_mixed", "prepared_names", "represent",
           "what_columns_became"]
