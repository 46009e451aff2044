"""``python -m wesh`` runs the ``wesh`` command."""

from wesh.cli import main

main()
