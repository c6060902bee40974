"""Vision: segmenters that turn a photo into a ``ShelfScene``, and pure functions over scenes."""
