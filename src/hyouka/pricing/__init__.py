"""Price tables: what a model call costs, per million tokens or per GPU-hour."""

from hyouka.pricing.table import Price, PriceTable, PricingError, default_prices, load_prices

__all__ = ["Price", "PriceTable", "PricingError", "default_prices", "load_prices"]
