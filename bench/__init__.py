"""`make bench`: the bot against loopback fakes of itch.io and Discord, measured.

Not a test: it prints a table of figures beside the bounds they should meet and writes the
same to bench/results.json. tests/test_bench_smoke.py runs it at a tiny scale so it cannot rot.
"""
