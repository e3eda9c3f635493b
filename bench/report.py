"""Writes docs/BENCHMARKS.md (tables of median, p90, min–max and ratio to the baseline) and the launch plot."""

from __future__ import annotations

import platform
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from bench.stats import Summary, summarize

__all__ = ["Report", "Row", "plot_launch"]


@dataclass
class Row:
    """One line of a table: a measurement and (optionally) its baseline from the same run."""

    name: str
    values: list[float]
    unit: str  # "ms", "s", "req/s", "MiB", "fds", or a rate such as "KiB/cycle"
    baseline: str = ""  # name of the baseline row ("" for the baseline itself)
    higher_is_better: bool = False
    note: str = ""

    @property
    def summary(self) -> Summary:
        return summarize(self.values)


def _fmt(value: float, unit: str) -> str:
    if unit == "ms":
        return f"{value:.1f} ms" if value < 100 else f"{value:.0f} ms"
    if unit == "s":
        return f"{value:.3f} s"
    if unit == "req/s":
        return f"{value:.0f} req/s"
    if unit == "MiB":
        return f"{value:.1f} MiB"
    if "/" in unit:  # a rate such as a fitted slope: signed, two decimals
        return f"{value:+.2f} {unit}"
    return f"{value:g} {unit}"


@dataclass
class Report:
    """Sections of rows plus the target checks, rendered as Markdown."""

    quick: bool
    sections: dict[str, list[Row]] = field(default_factory=dict)
    targets: list[tuple[str, str, str]] = field(default_factory=list)  # (target, figure, verdict)
    notes: dict[str, list[str]] = field(default_factory=dict)

    def add(self, section: str, row: Row) -> Row:
        self.sections.setdefault(section, []).append(row)
        return row

    def note(self, section: str, text: str) -> None:
        self.notes.setdefault(section, []).append(text)

    def find(self, section: str, name: str) -> Row | None:
        return next((r for r in self.sections.get(section, []) if r.name == name), None)

    def ratio(self, section: str, row: Row) -> float | None:
        base = self.find(section, row.baseline) if row.baseline else None
        if base is None or base.summary.median == 0:
            return None
        return row.summary.median / base.summary.median

    def render(self) -> str:
        lines = ["# Benchmarks", ""]
        lines += [
            "Written by `make bench` (`python -m bench"
            + (" --quick" if self.quick else "")
            + "`); do not edit by hand.",
            (
                f"Machine: {platform.machine()}, {_cpus()} CPUs, Linux {platform.release()}, Python "
                f"{platform.python_version()}, {_git_version()}."
            ),
            "Every ratio compares medians measured in the same run on the same machine; absolute times vary with",
            "machine load, the ratios much less. The scripted model server stands in for the model.",
            "",
        ]
        if self.targets:
            lines += ["## Targets", "", "| Target | Measured | Verdict |", "|---|---|---|"]
            lines += [f"| {t} | {f} | {v} |" for t, f, v in self.targets]
            lines.append("")
        for section, rows in self.sections.items():
            lines += [f"## {section}", ""]
            lines += ["| Measurement | n | median | p90 | min – max | ratio to baseline |", "|---|---|---|---|---|---|"]
            for row in rows:
                s = row.summary
                ratio = self.ratio(section, row)
                is_base = any(r.baseline == row.name for r in rows)
                ratio_text = "baseline" if is_base else (f"{ratio:.3f}×" if ratio is not None else "–")
                if row.baseline and ratio is not None:
                    ratio_text += f" of *{row.baseline}*"
                lines.append(
                    f"| {row.name} | {s.n} | {_fmt(s.median, row.unit)} | {_fmt(s.p90, row.unit)} | "
                    f"{_fmt(s.min, row.unit)} – {_fmt(s.max, row.unit)} | {ratio_text} |"
                )
            lines.append("")
            for text in self.notes.get(section, []):
                lines.append(f"- {text}")
            if self.notes.get(section):
                lines.append("")
        analysis = Path(__file__).resolve().parent / "analysis.md"
        if analysis.exists():
            lines.append(analysis.read_text().rstrip() + "\n")
        return "\n".join(lines)


def _cpus() -> int:
    import os

    return os.cpu_count() or 0


def _git_version() -> str:
    try:
        return subprocess.run(["git", "--version"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "git ?"


def plot_launch(series: dict[str, dict[int, list[float]]], path: Path) -> None:
    """Median launch latency (with p90 whiskers) against repository size, one line per mode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    for label, by_size in series.items():
        sizes = sorted(s for s, v in by_size.items() if v)
        if not sizes:
            continue
        med = [summarize(by_size[s]).median * 1000 for s in sizes]
        p90 = [summarize(by_size[s]).p90 * 1000 for s in sizes]
        lower = [0.0 for _ in sizes]
        upper = [max(0.0, p - m) for p, m in zip(p90, med, strict=True)]
        ax.errorbar(sizes, med, yerr=[lower, upper], marker="o", capsize=3, label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("files in the repository")
    ax.set_ylabel("launch latency, ms (median, whisker to p90)")
    ax.set_title("Launch acknowledgement vs repository size")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
