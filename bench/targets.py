"""The issue's targets, checked against the report's rows (verdicts go into the report, not into tests)."""

from __future__ import annotations

from bench.report import Report

__all__ = ["check_targets"]


def _median(report: Report, section: str, name: str) -> float | None:
    row = report.find(section, name)
    return row.summary.median if row and row.values else None


def check_targets(report: Report) -> None:
    """Append (target, measured figure, verdict) lines to `report.targets`."""
    launch = "Launch (REST launch → acknowledged)"
    floor50 = _median(report, launch, "floor, 50k files")
    warm50 = _median(report, launch, "Berth, pool warm, 50k files")
    if floor50 and warm50:
        ratio = warm50 / floor50
        report.targets.append((
            "Launch ack, 50k files, pool warm: ≤ 0.05× plain `git worktree add` (p50)",
            f"{warm50:.0f} ms vs {floor50:.0f} ms floor = {ratio:.3f}×",
            "met" if ratio <= 0.05 else "not met",
        ))
    floor1 = _median(report, launch, "floor, 1k files")
    cold1 = _median(report, launch, "Berth, pool empty, 1k files")
    warm1 = _median(report, launch, "Berth, pool warm, 1k files")
    if floor1 and cold1:
        ratio = cold1 / floor1
        report.targets.append((
            "Launch ack, 1k files, pool empty: ≤ 1.2× the floor (p50)",
            f"{cold1:.0f} ms vs {floor1:.0f} ms = {ratio:.2f}×",
            "met" if ratio <= 1.2 else "not met",
        ))
    if floor1 and warm1:
        ratio = warm1 / floor1
        report.targets.append((
            "Launch ack, 1k files, pool warm: below the floor (p50)",
            f"{warm1:.0f} ms vs {floor1:.0f} ms = {ratio:.2f}×",
            "met" if ratio < 1.0 else "not met",
        ))
    imp = "Import (10,000 messages)"
    berth = _median(report, imp, "import-claude-session (REST)")
    raw = _median(report, imp, "sqlite3 executemany, one transaction")
    if berth and raw:
        ratio = berth / raw
        report.targets.append((
            "Import of 10,000 messages: at least half the speed of raw sqlite executemany",
            f"{berth:.0f} ms vs {raw:.0f} ms = {ratio:.2f}× the time",
            "met" if ratio <= 2.0 else "not met",
        ))
    ev = "Events (agent stdout line → SSE client)"
    row = report.find(ev, "50 sessions streaming")
    if row and row.values:
        p99 = row.summary.p99
        report.targets.append((
            "Event latency p99 < 50 ms with 50 sessions streaming",
            f"p99 {p99:.1f} ms (median {row.summary.median:.1f} ms, n={row.summary.n})",
            "met" if p99 < 50 else "not met",
        ))
    fp = "Footprint (daemon process only)"
    before = _median(report, fp, "fds before the cycles")
    after = _median(report, fp, "fds after the cycles")
    rss_before = _median(report, fp, "RSS before the cycles")
    rss_after = _median(report, fp, "RSS after the cycles")
    if before is not None and after is not None:
        fds_ok = after <= before
        figure = f"fds {before:.0f} → {after:.0f}"
        verdict = "met" if fds_ok else "not met"
        rss_half = _median(report, fp, "RSS half-way through the cycles")
        if rss_before and rss_after:
            growth = rss_after - rss_before
            figure += f"; RSS {rss_before:.1f} → {rss_after:.1f} MiB ({growth:+.1f} MiB)"
            # A leak keeps growing; a one-off rise that levels off (SQLite's page cache filling up,
            # the allocator's arenas) does not. Judge the second half; allocator noise is a few
            # hundred KiB, so more than 1 MiB there is growth.
            late = growth if rss_half is None else rss_after - rss_half
            if rss_half is not None:
                figure += f", of which {late:+.1f} MiB in the second half"
            verdict = "met" if fds_ok and late <= 1.0 else (
                f"fds {'met' if fds_ok else 'not met'}; memory {'met' if late <= 1.0 else 'not met'}")
        report.targets.append(("No fd or memory growth over the launch/stop cycles", figure, verdict))
