"""``python -m sslbench``: the command line."""

from ._core.cli import main

main()
