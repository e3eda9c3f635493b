"""`python -m bench [--quick] [--parts launch,import,events,reads,footprint]` → docs/BENCHMARKS.md + docs/bench-launch.png."""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from bench.report import Report, Row, plot_launch
from bench.repos import make_repository
from bench.stack import Stack

REPO_ROOT = Path(__file__).resolve().parents[1]
WORK = Path(__file__).resolve().parent / ".work"
PARTS = ("launch", "import", "events", "reads", "footprint")
POOL = 2


def _ms(seconds: list[float]) -> list[float]:
    return [v * 1000 for v in seconds]


def run_launch(report: Report, quick: bool, repos: dict[int, Path], run_dir: Path) -> dict[str, dict[int, list[float]]]:
    from bench.launch import measure_berth, measure_floor

    runs = {1000: 5, 10_000: 3, 50_000: 3} if quick else {1000: 15, 10_000: 7, 50_000: 5}
    runs = {files: runs.get(files, 3) for files in repos}
    section = "Launch (REST launch → acknowledged)"
    series: dict[str, dict[int, list[float]]] = {"floor": {}, "berth, pool empty": {}, "berth, pool warm": {}}
    stack = Stack(run_dir / "launch")
    try:
        stack.start_model()
        stack.start_daemon("cold", pool=0, provider=stack.claude_provider())
        stack.start_daemon("warm", pool=POOL, provider=stack.claude_provider())
        stack.start_controlplane()
        for files, repo in repos.items():
            n = runs[files]
            print(f"  launch, {files} files ({n} runs each)", flush=True)
            floor = measure_floor(repo, n, run_dir / "floor-worktrees", stack.work / "home", stack.model.url)
            cold, _ = measure_berth(stack, "cold", repo, n, pool=0)
            warm, note = measure_berth(stack, "warm", repo, n, pool=POOL)
            base = f"floor, {files // 1000}k files"
            report.add(section, Row(base, _ms(floor), "ms"))
            report.add(section, Row(f"Berth, pool empty, {files // 1000}k files", _ms(cold), "ms", baseline=base))
            if warm:
                report.add(section, Row(f"Berth, pool warm, {files // 1000}k files", _ms(warm), "ms", baseline=base))
            if note:
                report.note(section, note)
            series["floor"][files] = floor
            series["berth, pool empty"][files] = cold
            series["berth, pool warm"][files] = warm
    finally:
        stack.close()
    report.note(section, "floor: `git worktree add -b NAME PATH` on the same repository, then starting the same "
                "claude binary with the same argv (until the process is spawned). Berth: HTTP POST to the control "
                "plane → gRPC LaunchSession → worktree → real claude spawned → acknowledgement back over HTTP.")
    report.note(section, f"pool warm: the daemon keeps {POOL} ready worktrees per repository; each launch waits "
                "(untimed) until the pool has refilled. pool empty: a daemon with `[pool] size = 0`.")
    return series


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke run)")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}")
    parser.add_argument("--sizes", default="1000,10000,50000", help="repository sizes (files) for the launch part")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "BENCHMARKS.md")
    parser.add_argument("--plot", type=Path, default=REPO_ROOT / "docs" / "bench-launch.png")
    args = parser.parse_args(argv)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"--parts: unknown part(s) {sorted(unknown)}; choose from {', '.join(PARTS)}")

    started = time.monotonic()
    print("generating repositories (cached in bench/.work/repos)", flush=True)
    sizes = sorted({int(n) for n in args.sizes.split(",") if n.strip()} | {1000})
    repos = {n: make_repository(WORK / "repos", n) for n in sizes}
    run_dir = WORK / f"run-{int(time.time())}"
    report = Report(quick=args.quick)
    try:
        if "launch" in parts:
            print("launch", flush=True)
            series = run_launch(report, args.quick, repos, run_dir)
            plot_launch(series, args.plot)
        if "import" in parts:
            from bench.imports import run_import

            print("import", flush=True)
            run_import(report, args.quick, run_dir, repos[1000])
        if "events" in parts:
            from bench.events import run_events

            print("events", flush=True)
            run_events(report, args.quick, run_dir, repos[1000])
        if "reads" in parts:
            from bench.reads import run_reads

            print("reads", flush=True)
            run_reads(report, args.quick, run_dir, repos[1000])
        if "footprint" in parts:
            from bench.footprint import run_footprint

            print("footprint", flush=True)
            run_footprint(report, args.quick, run_dir, repos[1000])
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    from bench.targets import check_targets

    check_targets(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report.render() + f"\nTotal benchmark time: {time.monotonic() - started:.0f} s.\n")
    print(f"wrote {args.out} and {args.plot} in {time.monotonic() - started:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
