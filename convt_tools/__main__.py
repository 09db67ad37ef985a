"""``python -m convt_tools`` runs the ``convt`` CLI."""

from .cli import main

main()
