import sys

from bench.run import main

# Guarded: the outside world's process (multiprocessing "spawn") imports this module again.
if __name__ == "__main__":
    sys.exit(main())
