"""`python -m bench [--quick] [--parts launch,import,events,approvals,review,reads,footprint,tunnel]`

Writes docs/BENCHMARKS.md and docs/bench-launch.png."""

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
PARTS = ("launch", "import", "events", "approvals", "review", "reads", "footprint", "tunnel")
POOL = 2
SESSIONS = 50


def _ms(seconds: list[float]) -> list[float]:
    return [v * 1000 for v in seconds]


def run_launch(report: Report, quick: bool, repos: dict[int, Path], run_dir: Path) -> dict[str, dict[int, list[float]]]:
    from bench.launch import BerthLauncher, FloorLauncher, floor_env, wait_out_deletions

    runs = {1000: 5, 10_000: 3, 50_000: 3} if quick else {1000: 15, 10_000: 7, 50_000: 5}
    runs = {files: runs.get(files, 3) for files in repos}
    section = "Launch (REST launch → acknowledged)"
    series: dict[str, dict[int, list[float]]] = {
        "floor": {},
        "berth, pool empty": {},
        "berth, pool warm": {},
        "berth, pool empty, until the agent runs": {},
    }
    stack = Stack(run_dir / "launch")
    launchers: list[FloorLauncher | BerthLauncher] = []
    try:
        stack.start_model()
        stack.start_daemon("cold", pool=0, provider=stack.claude_provider())
        stack.start_daemon("warm", pool=POOL, provider=stack.claude_provider())
        stack.start_controlplane()
        env = floor_env(stack.work / "home", stack.model.url)
        for files, repo in repos.items():
            n = runs[files]
            print(f"  launch, {files} files ({n} runs of each, interleaved)", flush=True)
            floor_launcher = FloorLauncher(repo, run_dir / "floor-worktrees", env)
            cold_launcher = BerthLauncher(stack, "cold", repo, 0)
            warm_launcher = BerthLauncher(stack, "warm", repo, POOL)
            launchers = [floor_launcher, cold_launcher, warm_launcher]
            # Before every series: the previous series' (or an earlier run's) deletions must not slow this one.
            wait_out_deletions()
            floor: list[float] = []
            cold: list[float] = []
            warm: list[float] = []
            for i in range(n):
                floor.append(floor_launcher.once())
                cold.append(cold_launcher.once())
                w = warm_launcher.once()
                if w is not None:
                    warm.append(w)
                print(
                    f"    #{i + 1}: floor {floor[-1] * 1000:.0f} ms, pool empty {cold[-1] * 1000:.0f} ms, "
                    f"pool warm {w * 1000 if w is not None else float('nan'):.0f} ms",
                    flush=True,
                )
            print(f"  removing the {files}-file series' worktrees and branches", flush=True)
            for launcher in launchers:
                launcher.cleanup()
            launchers = []
            base = f"floor, {files // 1000}k files"
            report.add(section, Row(base, _ms(floor), "ms"))
            report.add(section, Row(f"Berth, pool empty, {files // 1000}k files", _ms(cold), "ms", baseline=base))
            if warm:
                report.add(section, Row(f"Berth, pool warm, {files // 1000}k files", _ms(warm), "ms", baseline=base))
            report.add(
                section,
                Row(
                    f"(not a target) Berth, pool empty, until the agent runs, {files // 1000}k files",
                    _ms(cold_launcher.until_running),
                    "ms",
                    baseline=base,
                ),
            )
            if warm_launcher.note:
                report.note(section, warm_launcher.note)
            series["floor"][files] = floor
            series["berth, pool empty"][files] = cold
            series["berth, pool warm"][files] = warm
            series["berth, pool empty, until the agent runs"][files] = cold_launcher.until_running
    finally:
        for launcher in launchers:  # after a failure: leave no worktree or branch in the cached repositories
            try:
                launcher.cleanup()
            except Exception as exc:  # noqa: BLE001 - clean up the others anyway
                print(f"warning: cleanup: {exc}", file=sys.stderr)
        stack.close()
    report.note(
        section,
        "floor: `git worktree add -b NAME PATH` on the same repository, then starting the same "
        "claude binary with the same argv (until the process is spawned). Berth: HTTP POST to the control "
        "plane → gRPC LaunchSession → worktree → real claude spawned → acknowledgement back over HTTP.",
    )
    report.note(
        section,
        f"pool warm: the daemon keeps {POOL} ready worktrees per repository; each launch waits "
        "(untimed) until the pool has refilled; the first launch on a repository (which starts its pool) is not timed. "
        "pool empty: a second daemon with `[pool] size = 0`; it answers once the worktree and its branch are "
        "registered and writes the files and starts the agent after answering (`checkout_pending`), so the "
        'row "until the agent runs" (POST → the daemon\'s GetSession says active, polled every 2 ms) shows '
        "what that costs. The three kinds of launch are interleaved, and after each Berth sample the harness "
        "waits (untimed) for the agent to run and the pool to refill, so no background checkout overlaps the "
        "next sample.",
    )
    report.note(
        section,
        "Nothing a sample creates is deleted until its whole series (one repository size) is done "
        "(Berth sessions are deleted without their worktrees, which are removed after the series), and each "
        "series starts after an untimed wait of vm.dirty_expire_centisecs + 5 s: ext4 scans past every inode "
        "freed within that window when it allocates one (`recently_deleted()`), so deleting one sample's "
        "checkout made the next sample's checkout slower (the 1k-file floor rose from 232 ms to 950 ms "
        "within one run).",
    )
    return series


def run_shared(
    report: Report, quick: bool, run_dir: Path, repo: Path, parts: list[str], big_repo: Path | None = None
) -> None:
    """import, events, approvals, review and footprint on one stub-agent daemon + control plane."""
    from bench.approvals import run_approvals
    from bench.events import run_events, run_listeners
    from bench.footprint import SECTION as FOOTPRINT
    from bench.footprint import cycles, measure_rss
    from bench.imports import run_import
    from bench.launch import wait_out_deletions
    from bench.review import run_review
    from bench.shared import SharedStack

    shared = SharedStack(run_dir, repo)
    try:
        idle = measure_rss(shared)
        if "import" in parts:
            print("import", flush=True)
            run_import(report, quick, run_dir, repo, shared)
        if {"events", "approvals", "footprint"} & set(parts):
            print(f"launching {SESSIONS} stub sessions", flush=True)
            for _ in range(SESSIONS):
                shared.launch()
        if "events" in parts:
            print("events", flush=True)
            run_events(report, quick, shared, SESSIONS)
            run_listeners(report, quick, shared, SESSIONS)
        if "approvals" in parts:
            print("approvals", flush=True)
            run_approvals(report, quick, shared)
        if "review" in parts and big_repo is not None:
            print("review", flush=True)
            run_review(report, quick, shared, big_repo)
        if "footprint" in parts:
            print("footprint", flush=True)
            busy = measure_rss(shared)
            report.add(FOOTPRINT, Row("RSS idle (after start)", [idle], "MiB"))
            report.add(
                FOOTPRINT, Row(f"RSS with {SESSIONS} sessions", [busy], "MiB", baseline="RSS idle (after start)")
            )
            shared.delete_all()
            # 50 worktrees were just deleted: let ext4 forget them so they do not slow the first cycles.
            wait_out_deletions()
            cycles(report, quick, shared)
    finally:
        shared.close()


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
        shared_parts = [p for p in parts if p not in ("launch", "reads", "tunnel")]
        if shared_parts:
            run_shared(report, args.quick, run_dir, repos[1000], shared_parts, repos.get(max(repos)))
        if "tunnel" in parts:
            from bench.tunnel import run_tunnel, run_tunnel_events

            print("tunnel", flush=True)
            run_tunnel(report, args.quick, run_dir, repos[1000])
            run_tunnel_events(report, args.quick, run_dir, repos[1000], SESSIONS)
        if "reads" in parts:
            from bench.reads import run_reads

            print("reads", flush=True)
            run_reads(report, args.quick, run_dir)
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
