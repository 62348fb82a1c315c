"""What every benchmark shares: the machine's description, timing statistics, JSON results in ``bench/out``
and ``bench/RESULTS.md`` rebuilt from them.

Every figure is reported beside a baseline measured in the same run (these machines are noisy), repeated,
as medians.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
OUT = BENCH / "out"
RESULTS = BENCH / "RESULTS.md"
ORDER = ("vector_search", "embedding", "front_path", "routes", "ingest", "backfill", "memory", "gpu")


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = 0.0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for name in ("torch", "ray", "open_clip_torch", "hnswlib", "psycopg"):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            continue
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "gpu": "none",
        **versions,
    }


def ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def latency_stats(samples_s: Sequence[float]) -> dict[str, float]:
    """p50, p95 and p99 in milliseconds (nearest-rank)."""
    ordered = sorted(samples_s)

    def pct(p: float) -> float:
        return ms(ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))])

    return {"p50_ms": pct(50), "p95_ms": pct(95), "p99_ms": pct(99), "n": len(ordered)}


def timed(fn: Callable[[], Any], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def median_of(fn: Callable[[], float], repeats: int) -> tuple[float, list[float]]:
    """The median of ``repeats`` measurements, and all of them."""
    values = [fn() for _ in range(repeats)]
    return statistics.median(values), values


def figure(
    name: str, value: float, unit: str, target: str | None = None, met: bool | None = None, **extra: Any
):
    """One headline figure for the summary table: its value, the target and whether it was met."""
    return {"figure": name, "value": value, "unit": unit, "target": target, "met": met, **extra}


def save(name: str, *, figures: list[dict], tables: list[dict], notes: list[str] | None = None) -> Path:
    """Write ``bench/out/<name>.json`` and rebuild RESULTS.md from every result there."""
    OUT.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": name,
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "figures": figures,
        "tables": tables,
        "notes": notes or [],
    }
    path = OUT / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False))
    for t in tables:
        print(f"\n{t['title']}\n{markdown_table(t['headers'], t['rows'])}")
    print(f"\n{markdown_table(['figure', 'value', 'target', 'met'], _figure_rows(figures))}")
    write_results()
    return path


def table(title: str, headers: list[str], rows: list[list[Any]]) -> dict[str, Any]:
    return {"title": title, "headers": headers, "rows": rows}


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1000 else f"{v:,.0f}"
    if v is True:
        return "yes"
    if v is False:
        return "**no**"
    return "" if v is None else str(v)


def markdown_table(headers: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _figure_rows(figures: list[dict]) -> list[list[Any]]:
    return [
        [f["figure"], f"{_fmt(f['value'])} {f['unit']}", f.get("target") or "", f.get("met")] for f in figures
    ]


def write_results() -> None:
    """RESULTS.md from the JSON results: a summary of every figure against its target, then each table."""
    results = {p.stem: json.loads(p.read_text()) for p in sorted(OUT.glob("*.json"))}
    names = [n for n in ORDER if n in results] + sorted(n for n in results if n not in ORDER)
    if not names:
        return
    m = results[names[0]]["machine"]
    lines = [
        "# Benchmark results",
        "",
        "Made by `python -m bench` (or one benchmark: `python -m bench.<name>`) from `bench/out/*.json`; "
        "do not edit by hand. Every figure is a ratio against a baseline measured in the same run, medians "
        "of repeats.",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, {m['os']}, Python {m['python']}, "
        f"GPU: {m['gpu']}; "
        + ", ".join(f"{k} {v}" for k, v in m.items() if k in ("torch", "ray", "hnswlib")),
        "",
        "## Summary",
        "",
    ]
    summary = [[n, *row] for n in names for row in _figure_rows(results[n]["figures"])]
    lines += [markdown_table(["benchmark", "figure", "value", "target", "met"], summary), ""]
    for n in names:
        r = results[n]
        lines += [f"## {n} ({r['at']})", ""]
        for t in r["tables"]:
            lines += [f"### {t['title']}", "", markdown_table(t["headers"], t["rows"]), ""]
        lines += [f"- {note}" for note in r["notes"]]
        lines += [""] if r["notes"] else []
    RESULTS.write_text("\n".join(lines).rstrip() + "\n")
