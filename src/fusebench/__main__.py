"""``python -m fusebench``: the same command line as ``fusebench``."""

from fusebench.cli import main

main()
