"""``python -m bitwitness`` runs the same command line as the ``bitwitness`` script."""

from __future__ import annotations

from bitwitness.cli.main import main

if __name__ == "__main__":
    main()
