"""Raw table -> one row per customer."""
from segmint.recipes.transactions import (
    FEATURE_SETS,
    clean_transactions,
    customer_table,
    register_feature_set,
    required_roles,
)

__all__ = ["FEATURE_SETS", "clean_transactions", "customer_table", "register_feature_set",
           "required_roles"]
