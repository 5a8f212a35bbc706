"""`make bench` at a tiny scale, so that it cannot rot: every scenario runs against the fakes
and the report keeps its shape. Timings mean nothing at this scale and are not looked at."""

from __future__ import annotations

import json

from bench.run import run
from bench.scenarios import Scale

TINY = Scale(
    latency=0.01,
    limit=400.0,
    itch_burst=40,
    client_burst=30,
    burst_members=20,
    games=3,
    multi_history=300,
    early_buyers=3,
    multi_burst_members=20,
    overhead_members=20,
    overhead_concurrency=5,
    reference_requests=5,
    store_sizes=(10_000,),
    lookups=20,
    single_inserts=20,
    startup_settle=0.0,
    naive_sample=5,
)
FIELDS = {"scenario", "figure", "value", "unit", "bound", "ok"}


def figure(report, scenario, starts):
    (found,) = [
        f
        for f in report["figures"]
        if f["scenario"].startswith(scenario) and f["figure"].startswith(starts)
    ]
    return found


async def test_every_scenario_runs_and_reports_its_figures():
    report = await run(TINY)

    json.dumps(report)  # what bench/results.json holds
    assert {"generated_at", "machine", "scale", "seconds", "passed", "figures", "table"} <= set(
        report
    )
    assert list(report["scale"]["store_sizes"]) == [10_000]
    assert {f["scenario"][0] for f in report["figures"]} == set("123456")
    for f in report["figures"]:
        assert set(f) == FIELDS
        assert isinstance(f["value"], int | float)
        assert (f["bound"] is None) == (f["ok"] is None)
        if f["bound"] is not None:
            assert f["bound"]["op"] in ("<", "<=", ">", ">=", "==")
        assert f["figure"] in report["table"]

    # What does not depend on timing holds at any scale.
    assert figure(report, "1", "20 members")["value"] == 20
    assert figure(report, "1", "429")["value"] == 0
    assert figure(report, "3", "the same 20 members")["value"] == 0
    assert figure(report, "3", "answered as already")["value"] == 20
    assert figure(report, "2", "download URL")["value"] == 1
    assert figure(report, "2", "burst of 20")["value"] == 20
    assert figure(report, "4", "20 redemptions")["value"] == 20
    assert figure(report, "5 store 10k", "lookup by key")["value"] > 0
    assert figure(report, "6", "keys verified")["value"] == 5
