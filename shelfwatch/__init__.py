"""ShelfWatch: retail shelf analytics that a retailer runs on its own machines."""

__version__ = "0.1.0"
