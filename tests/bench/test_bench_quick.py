"""`scripts/bench --quick` completes and emits every figure. No timing is asserted: this machine is shared."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SPREAD = {"min", "median"}


@pytest.fixture(scope="module")
def run():
    """The quick run with its defaults, and the full run's results and benchmarks table before and after it."""
    kept = [REPO / "docs" / "benchmarks.md", REPO / "bench" / "results.json"]
    before = [path.read_bytes() for path in kept]
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return done, before, [path.read_bytes() for path in kept]


@pytest.fixture(scope="module")
def results(run):
    done, _, _ = run
    assert done.returncode == 0, done.stderr[-3000:]
    printed = json.loads(done.stdout.strip().splitlines()[-1])
    assert json.loads((REPO / "bench" / "results-quick.json").read_text()) == printed
    return printed


def test_quick_run_leaves_the_full_runs_results_and_benchmarks_table_alone(run, results):
    _, before, after = run
    assert after == before
    assert "goals are judged on the full run" in run[0].stderr


def test_quick_run_reports_transform_rows_per_second_for_both_servers_and_strategies(results):
    transform = results["transform"]
    for strategy in ("MultiRecord", "SingleRecord"):
        for kind in ("ours", "baseline"):
            figures = transform[strategy][kind]
            assert figures.keys() >= SPREAD and figures["median"] > 0 and figures["rows"] > 0
    assert "note" in transform["SingleRecord"]
    assert transform["outputs_identical"] is True


def test_quick_run_reports_serving_throughput_and_latency_at_each_client_count(results):
    serving = results["serving"]
    for kind in ("ours", "baseline"):
        for level in ("1", "16", "64"):
            figures = serving[kind][level]
            assert figures["requests"] > 0 and figures["errors"] == 0
            for name in ("requests_per_second", "p50_ms", "p99_ms"):
                assert figures[name].keys() >= SPREAD
    for limit in ("sklearn_predict", "ours_predict_one", "ours_wsgi_handler"):
        assert serving["in_process"][limit]["calls_per_second"]["median"] > 0


def test_quick_run_reports_the_rehearsal_by_stage(results):
    rehearsal = results["rehearsal"]
    assert "failed" not in rehearsal, rehearsal.get("failed")
    assert rehearsal["seconds"].keys() >= SPREAD
    assert {"Train", "BatchTransform"} <= rehearsal["stages"].keys()


def test_quick_run_reports_the_image_or_why_it_is_absent(results):
    image = results["image"]
    assert "skipped" in image or ({"size_mb", "cached_rebuild_seconds"} <= image.keys())


def test_quick_run_reports_normal_clients_beside_slow_ones_for_ours_and_the_previous_setup(results):
    slow = results["slow_clients"]
    for level in ("2", "16"):
        ours, previous = slow["ours"][level], slow["previous"][level]
        assert ours["requests"] > 0 and ours["unanswered_or_failed"] == 0
        assert ours["p99_ms"].keys() >= SPREAD and ours["requests_per_second"].keys() >= SPREAD
        assert previous["runs"] == ours["runs"] >= 1
        assert f"slow_clients_{level}_p99_previous_over_ours" in results["ratios"]


def test_quick_run_reports_the_inference_functions_cold_start_beside_a_minimal_handler(results):
    cold = results["cold_start"]
    for kind in ("ours", "minimal"):
        for part in ("import_s", "first_call_s", "init_s", "process_s"):
            assert cold[kind][part].keys() >= SPREAD and cold[kind][part]["median"] > 0
    assert results["ratios"]["cold_start_init_ours_over_minimal"] > 0


def test_quick_run_loads_the_local_api_with_200_clients_and_counts_the_unanswered(results):
    load = results["gateway_load"]
    assert load["clients"] == 200 and load["requests"] > 0
    assert load["unanswered"] == load["failed_or_unanswered"] + load["answered_late"]


def test_quick_run_checks_every_goal_of_the_issue(results):
    assert len(results["goals"]) == 8
    for goal in results["goals"]:
        assert isinstance(goal["pass"], bool) and goal["measured"] is not None
    assert all(value is not None for value in results["ratios"].values())
