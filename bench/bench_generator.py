"""Benchmark of the sandbox world generator: records per second and peak memory at growing sizes.

    .venv/bin/python bench/bench_generator.py                      # 10k, 100k and 1M opportunities
    .venv/bin/python bench/bench_generator.py --sizes 10000,100000 --dir /tmp/worlds

Each size is generated in a fresh child process, so each peak RSS (resource.getrusage ru_maxrss) is that
size's own. Flat memory shows as peak RSS that does not grow with the number of records. Prints a
markdown table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NOW = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
TABLES = ("teams", "reps", "accounts", "contacts", "leads", "opportunities", "line_items", "stage_history",
          "activities", "contracts", "currency_rates", "pipelines", "stages", "products")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def child(opportunities: int, path: Path) -> dict[str, object]:
    """Generate one world in this process and measure it."""
    sys.path.insert(0, str(REPO))
    from connectors.sandbox.world.generate import generate_world

    rows_phase_peak = [0.0]
    rows_done_at = [0.0]

    def progress(_done: int) -> None:
        rows_phase_peak[0] = max(rows_phase_peak[0], peak_rss_mb())
        rows_done_at[0] = time.perf_counter()

    started = time.perf_counter()
    world = generate_world(path, seed=1, size=opportunities, now=NOW, progress=progress)
    seconds = time.perf_counter() - started
    generation_peak = peak_rss_mb()  # before counting: COUNT(*) reads the file through mmap, which RSS shows
    counts = {table: world.count(table) for table in TABLES}
    world.close()
    return {"opportunities": opportunities, "seconds": seconds, "records": sum(counts.values()),
            "activities": counts["activities"], "peak_rss_mb": generation_peak,
            "rows_phase_peak_rss_mb": rows_phase_peak[0] or None,
            "file_mb": path.stat().st_size / 1e6}


def run_size(opportunities: int, directory: Path, keep: bool) -> dict[str, object]:
    path = directory / f"bench-{opportunities}.sqlite"
    answer = subprocess.run([sys.executable, __file__, "--child", str(opportunities), str(path)],
                            check=True, capture_output=True, text=True, cwd=REPO)
    result = json.loads(answer.stdout.strip().splitlines()[-1])
    if not keep:
        for leftover in directory.glob(f"bench-{opportunities}.sqlite*"):
            leftover.unlink()
    return result


def table(results: list[dict[str, object]]) -> str:
    lines = ["| opportunities | activities | all records | seconds | records/s | peak RSS while writing rows | "
             "peak RSS overall | world file |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for result in results:
        rows_peak = result["rows_phase_peak_rss_mb"]
        lines.append(
            f"| {result['opportunities']:,} | {result['activities']:,} | {result['records']:,} | "
            f"{result['seconds']:.1f} | {result['records'] / result['seconds']:,.0f} | "
            f"{'-' if rows_peak is None else f'{rows_peak:.0f} MB'} | {result['peak_rss_mb']:.0f} MB | "
            f"{result['file_mb']:.0f} MB |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000,1000000", help="opportunities per run, comma-separated")
    parser.add_argument("--dir", type=Path, default=None, help="where the worlds are written (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the world files")
    parser.add_argument("--child", nargs=2, metavar=("OPPORTUNITIES", "PATH"), help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        print(json.dumps(child(int(arguments.child[0]), Path(arguments.child[1]))))
        return
    directory = arguments.dir or Path(tempfile.mkdtemp(prefix="kpi-agent-bench-"))
    directory.mkdir(parents=True, exist_ok=True)
    results = []
    for size in (int(text) for text in arguments.sizes.split(",")):
        results.append(run_size(size, directory, arguments.keep))
        print(f"{size:,} opportunities: {results[-1]['seconds']:.1f} s", file=sys.stderr, flush=True)
    print(table(results))


if __name__ == "__main__":
    main()
