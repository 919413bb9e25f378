"""``python -m queuescale``: the same as the ``queuescale`` command."""

from queuescale.cli import main

main()
