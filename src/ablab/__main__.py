"""``python -m ablab`` is the ``ablab`` command."""

from ablab.cli import main

main()
