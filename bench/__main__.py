"""Every CPU benchmark, one after the other, each in its own process (its own Ray and database), then
bench/RESULTS.md from their JSON.

    python -m bench [--only vector_search,embedding]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from bench.common import write_results

CPU_BENCHMARKS = ("vector_search", "embedding", "front_path", "routes", "ingest", "backfill", "memory")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--only", default=",".join(CPU_BENCHMARKS), help="comma-separated benchmark names")
    args = p.parse_args()
    failed = []
    for name in args.only.split(","):
        t0 = time.monotonic()
        print(f"== bench.{name}", flush=True)
        rc = subprocess.call([sys.executable, "-m", f"bench.{name}"])
        print(f"== bench.{name}: exit {rc} in {time.monotonic() - t0:.0f}s", flush=True)
        if rc:
            failed.append(name)
    write_results()
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
