"""The core data model every stage passes along: what one shelf photo contains."""

from shelfwatch.core.scene import Gap, Products, Shelf, ShelfScene

__all__ = ["Gap", "Products", "Shelf", "ShelfScene"]
