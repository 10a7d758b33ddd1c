"""Raw table -> one row per customer: transaction lines (feature sets) or customer tables as
they are (attributes)."""
from segmint.recipes._build import build_customers
from segmint.recipes._table import CustomerTable
from segmint.recipes.attributes import attributes_table
from segmint.recipes.transactions import (
    FEATURE_SETS,
    clean_transactions,
    customer_table,
    register_feature_set,
    required_roles,
)

__all__ = ["FEATURE_SETS", "CustomerTable", "attributes_table", "build_customers", "clean_transactions",
           "customer_table", "register_feature_set", "required_roles"]
