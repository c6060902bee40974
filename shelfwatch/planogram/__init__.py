"""Reference layouts (planograms), catalogs, SKU identification and compliance checking."""
