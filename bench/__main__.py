"""``python -m bench``: every benchmark in one run (see ``bench.run``)."""

from bench.run import main

main()
