"""The issue's goals checked against the figures, and the table of docs/benchmarks.md made from them."""

from __future__ import annotations

import re
from pathlib import Path

BLOCK = re.compile(r"(<!-- bench:start -->\n).*?(<!-- bench:end -->)", re.DOTALL)


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 2) if b else None


def _goal(name: str, measured: float | None, op: str, target: float, unit: str, basis: str) -> dict:
    passed = measured is not None and (measured >= target if op == ">=" else measured <= target)
    return {
        "goal": name,
        "measured": measured,
        "target": f"{op} {target:g}{unit}",
        "basis": basis,
        "pass": passed,
    }


def ratios(results: dict) -> dict:
    transform, serving = results["transform"], results["serving"]
    multi, single = transform["MultiRecord"], transform["SingleRecord"]
    out = {
        "transform_multirecord_ours_over_baseline": _ratio(
            multi["ours"]["median"], multi["baseline"]["median"]
        ),
        "transform_singlerecord_ours_over_baseline": _ratio(
            single["ours"]["median"], single["baseline"]["median"]
        ),
        "transform_ours_multirecord_over_baseline_singlerecord": _ratio(
            multi["ours"]["median"], single["baseline"]["median"]
        ),
    }
    for level in serving["ours"]:
        out[f"serving_{level}_clients_ours_over_baseline"] = _ratio(
            serving["ours"][level]["requests_per_second"]["median"],
            serving["baseline"][level]["requests_per_second"]["median"],
        )
    slow = results["slow_clients"]
    for level in slow["ours"]:
        ours, previous = slow["ours"][level]["p99_ms"], slow["previous"][level]["p99_ms"]
        out[f"slow_clients_{level}_p99_previous_over_ours"] = (
            _ratio(previous["median"], ours["median"]) if ours and previous else None
        )
    cold = results["cold_start"]
    out["cold_start_init_ours_over_minimal"] = _ratio(
        cold["ours"]["init_s"]["median"], cold["minimal"]["init_s"]["median"]
    )
    return out


def _median(figure: dict | None) -> float | None:
    return figure["median"] if figure else None


def goals(results: dict) -> list[dict]:
    r = results["ratios"]
    at16 = results["serving"]["ours"]["16"]
    return [
        _goal(
            "batch transform: ours MultiRecord vs baseline MultiRecord",
            r["transform_multirecord_ours_over_baseline"],
            ">=",
            2,
            "x",
            "ratio of median rows/s",
        ),
        _goal(
            "batch transform: ours MultiRecord vs baseline SingleRecord",
            r["transform_ours_multirecord_over_baseline_singlerecord"],
            ">=",
            300,
            "x",
            "ratio of median rows/s",
        ),
        _goal(
            "serving at 16 clients: ours vs baseline req/s",
            r["serving_16_clients_ours_over_baseline"],
            ">=",
            4,
            "x",
            "ratio of median req/s",
        ),
        _goal(
            "serving at 16 clients: our p99", at16["p99_ms"]["median"], "<=", 10, " ms", "median over runs"
        ),
        _goal(
            "serving with 16 slow clients open: our p99 for normal clients",
            _median(results["slow_clients"]["ours"]["16"]["p99_ms"]),
            "<=",
            10,
            " ms",
            "median over runs",
        ),
        _goal(
            "inference function cold start (import + first call): ours vs a boto3-only handler",
            r["cold_start_init_ours_over_minimal"],
            "<=",
            1.5,
            "x",
            "ratio of median seconds",
        ),
        _goal(
            f"local API, {results['gateway_load']['clients']} clients for "
            f"{results['gateway_load']['seconds']:g} s: requests unanswered within "
            f"{results['gateway_load']['answer_within_seconds']:g} s",
            results["gateway_load"]["unanswered"],
            "<=",
            0,
            "",
            "one run",
        ),
        _goal(
            "rehearsal wall time, whole command (start-up and shutdown included)",
            results["rehearsal"]["command_seconds"]["median"]
            if "command_seconds" in results["rehearsal"]
            else None,
            "<=",
            10,
            " s",
            "median of the command's wall time",
        ),
    ]


def _fmt(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}"


def table(results: dict) -> str:
    t, s, r = results["transform"], results["serving"], results["ratios"]
    lines = [
        f"Measured by `scripts/bench{' --quick' if results['mode'] == 'quick' else ''}` on "
        f"{results['machine']['cpus']} CPUs, {results['machine']['date']}; medians of "
        f"{t['MultiRecord']['ours']['runs']} runs (min in `bench/results.json`).",
        "",
        "| figure | ours | baseline | ours / baseline |",
        "| --- | ---: | ---: | ---: |",
    ]
    for strategy in ("MultiRecord", "SingleRecord"):
        ours, base = t[strategy]["ours"], t[strategy]["baseline"]
        lines.append(
            f"| batch transform {strategy}, rows/s ({ours['rows']:,} rows) | {_fmt(ours['median'])} | "
            f"{_fmt(base['median'])} | {_fmt(_ratio(ours['median'], base['median']), 1)}x |"
        )
    for level in s["ours"]:
        ours, base = s["ours"][level], s["baseline"][level]
        lines.append(
            f"| serving, {level} client{'s' if level != '1' else ''}: req/s | "
            f"{_fmt(ours['requests_per_second']['median'])} | {_fmt(base['requests_per_second']['median'])} | "
            f"{_fmt(r[f'serving_{level}_clients_ours_over_baseline'], 1)}x |"
        )
        lines.append(
            f"| serving, {level} client{'s' if level != '1' else ''}: p50 / p99 ms | "
            f"{_fmt(ours['p50_ms']['median'], 2)} / {_fmt(ours['p99_ms']['median'], 2)} | "
            f"{_fmt(base['p50_ms']['median'], 2)} / {_fmt(base['p99_ms']['median'], 2)} | |"
        )
    slow = results["slow_clients"]
    for level in slow["ours"]:
        ours, previous = slow["ours"][level], slow["previous"][level]
        times = r[f"slow_clients_{level}_p99_previous_over_ours"]
        lines.append(
            f"| serving with {level} slow clients open, {slow['normal_clients']} normal clients' p99 ms "
            f"(baseline column: our previous sync workers) | {_fmt(_median(ours['p99_ms']), 2)} | "
            f"{_fmt(_median(previous['p99_ms']), 2)} | {_fmt(times)}x lower |"
        )
    cold = results["cold_start"]
    lines.append(
        "| inference function cold start, import + first call, s (baseline column: a boto3-only handler) | "
        f"{_fmt(cold['ours']['init_s']['median'], 3)} | {_fmt(cold['minimal']['init_s']['median'], 3)} | "
        f"{_fmt(r['cold_start_init_ours_over_minimal'], 2)}x |"
    )
    load = results["gateway_load"]
    lines.append(
        f"| local API, {load['clients']} clients for {load['seconds']:g} s: answers/s, p99 ms, unanswered "
        f"within {load['answer_within_seconds']:g} s | {_fmt(load['requests_per_second'])}, "
        f"{_fmt(load['p99_ms'])}, {load['unanswered']} | | |"
    )
    limits = s["in_process"]
    lines.append(
        "| in-process limit, one core, calls/s (ours: single-row predict / whole handler; baseline: "
        "scikit-learn predict) | "
        f"{_fmt(limits['ours_predict_one']['calls_per_second']['median'])} / "
        f"{_fmt(limits['ours_wsgi_handler']['calls_per_second']['median'])} | "
        f"{_fmt(limits['sklearn_predict']['calls_per_second']['median'])} | |"
    )
    reh = results["rehearsal"]
    if "seconds" in reh:
        lines.append(
            f"| rehearsal, seconds: state machine (whole command) | {_fmt(reh['seconds']['median'], 1)} "
            f"({_fmt(reh['command_seconds']['median'], 1)}) | | |"
        )
    else:
        lines.append(f"| rehearsal | failed: {reh['failed'][:120]} | | |")
    image = results["image"]
    if "skipped" in image:
        lines.append(f"| model image | skipped: {image['skipped']} | | |")
    else:
        rebuild = image["cached_rebuild_seconds"]
        lines.append(
            f"| model image: size MB (added to base) / cached rebuild s | {_fmt(image['size_mb'])} "
            f"({_fmt(image['added_to_base_mb'])}) / {_fmt(rebuild['median'] if rebuild else None, 1)} | | |"
        )
    lines += ["", "| goal | target | measured | |", "| --- | --- | ---: | --- |"]
    for goal in results["goals"]:
        lines.append(
            f"| {goal['goal']} | {goal['target']} | {_fmt(goal['measured'], 2)} | "
            f"{'pass' if goal['pass'] else 'miss'} |"
        )
    slowest = sorted(reh.get("stages", {}).items(), key=lambda kv: -kv[1]["median"])[:4]
    lines += [
        "",
        "Slowest rehearsal stages (median s): "
        + ", ".join(f"{name} {figures['median']:.2f}" for name, figures in slowest)
        + ".",
    ]
    return "\n".join(lines) + "\n"


def rewrite_block(path: Path, text: str) -> bool:
    """Replaces the text between the bench markers of `path`; False when the file has no such block."""
    if not path.is_file():
        return False
    content = path.read_text()
    if not BLOCK.search(content):
        return False
    path.write_text(BLOCK.sub(lambda m: m.group(1) + text + m.group(2), content, count=1))
    return True
