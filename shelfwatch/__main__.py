"""``python -m shelfwatch``: the same as the ``shelfwatch`` command."""

from shelfwatch.cli import main

main()
