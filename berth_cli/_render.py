"""What the CLI prints: rich tables and colour for people, JSON lines for scripts."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from berth_cli._client import CliError

STATUS_STYLES = {"created": "cyan", "active": "green", "paused": "yellow", "completed": "blue", "failed": "red"}
ROLE_STYLES = {"user": "bold cyan", "assistant": "bold green", "tool": "magenta", "system": "dim"}


class Output:
    """Prints results as JSON (scripts) or rich tables and colour (people)."""

    def __init__(self, as_json: bool, wide: bool = False) -> None:
        self.as_json = as_json
        self.wide = wide
        self.out = Console(highlight=False, soft_wrap=True)
        self.err = Console(stderr=True, highlight=False, soft_wrap=True)

    def json(self, data: Any) -> None:
        sys.stdout.write(json.dumps(data, default=str) + "\n")
        sys.stdout.flush()

    def result(self, data: Any, title: str | None = None) -> None:
        if self.as_json:
            self.json(data)
            return
        if isinstance(data, dict):
            table = Table(show_header=False, title=title, title_justify="left", box=None)
            table.add_column(style="bold")
            table.add_column()
            for key, value in data.items():
                if isinstance(value, (dict, list)):
                    value = json.dumps(value, default=str)
                cell = (
                    Text(str(value), style=STATUS_STYLES.get(str(value), ""))
                    if key in ("status", "session_status")
                    else str(value)
                )
                table.add_row(key, cell)
            self.out.print(table)
        else:
            self.out.print(data)

    def rows(self, items: list[dict[str, Any]], columns: Sequence[str], title: str, raw: Any) -> None:
        """A table that never cuts a value: the columns (most important first) that fit the terminal,
        one space apart; `--wide` shows them all, `--json` everything."""
        if self.as_json:
            self.json(raw)
            return
        cells = [["" if item.get(c) is None else str(item.get(c)) for c in columns] for item in items]
        widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]
        shown = len(columns)
        if not self.wide:
            while shown > 1 and sum(widths[:shown]) + shown - 1 > self.out.width:
                shown -= 1
        # Lines made here rather than by rich's Table, which shrinks columns to the terminal even when
        # told not to; printed with soft_wrap so nothing is wrapped or cropped.
        self.out.print(Text(title, style="italic"), soft_wrap=True)
        header = Text(
            " ".join(c.ljust(w) for c, w in zip(columns[:shown], widths, strict=False)).rstrip(), style="bold"
        )
        self.out.print(header, soft_wrap=True)
        for row in cells:
            line = Text()
            for i, (col, text) in enumerate(zip(columns[:shown], row, strict=False)):
                if i:
                    line.append(" ")
                line.append(
                    text if i == shown - 1 else text.ljust(widths[i]),
                    style=STATUS_STYLES.get(text, "") if col == "status" else "",
                )
            self.out.print(line, soft_wrap=True)
        if shown < len(columns):
            self.err.print(
                f"[dim]left out to fit {self.out.width} columns: {', '.join(columns[shown:])} "
                "(--wide shows them, --json shows everything)[/dim]"
            )
        if not items:
            self.err.print(f"[dim]no {title.lower()}[/dim]")

    def event(self, record: dict[str, Any], session_id: str = "SESSION") -> None:
        if self.as_json:
            self.json(record)
            return
        data = record.get("data")
        if not isinstance(data, dict):
            self.out.print(Text(f"[{record.get('event')}] {data}", style="dim"))
            return
        seq = data.get("seq", record.get("id", ""))
        role = str(data.get("role", record.get("event", "")))
        line = Text(f"{seq:>5} ", style="dim")
        line.append(f"{role:<9} ", style=ROLE_STYLES.get(role, ""))
        content = data.get("content") or {}
        line.append(describe_content(content, data.get("status")))
        self.out.print(line)
        meta = data.get("metadata") or {}
        if content.get("type") == "approval_request" and meta.get("approval_id"):
            sid, aid = session_id, meta["approval_id"]
            self.out.print(
                Text(
                    f"        answer: berth approve {sid} {aid}   or: berth approve {sid} {aid} --deny --message WHY",
                    style="bold yellow",
                )
            )

    def status(self, message: str):
        """A spinner on stderr while a request runs (people only)."""
        if self.as_json or not self.err.is_terminal:
            return _NullContext()
        return self.err.status(message)

    def error(self, exc: CliError) -> None:
        if self.as_json and exc.body is not None:
            self.json({"error": str(exc), "status": exc.status, "body": exc.body})
        self.err.print(Text(f"error: {exc}", style="bold red"))


class _NullContext:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def describe_content(content: dict[str, Any], status: str | None = None) -> Text:
    """One line for a message content of the seed shape."""
    kind = content.get("type", "text")
    if status:
        return Text(f"status → {status}", style=STATUS_STYLES.get(status, "bold"))
    if kind == "tool_use":
        args = json.dumps(content.get("arguments") or {}, default=str)
        return Text(f"→ {content.get('name')}({_clip(args)})", style="magenta")
    if kind == "tool_result":
        output = content.get("output")
        text = output if isinstance(output, str) else json.dumps(output, default=str)
        return Text(f"← {_clip(text)}", style="red" if content.get("is_error") else "magenta")
    if kind == "error":
        return Text(content.get("message") or content.get("text") or "error", style="bold red")
    if kind == "approval_request":
        return Text(f"? approval needed: {content.get('message') or content.get('name')}", style="bold yellow")
    if kind == "approval_decision":
        verdict = "allowed" if content.get("success") else "not allowed"
        reason = f" ({content['message']})" if content.get("message") else ""
        return Text(
            f"{'✓' if content.get('success') else '✗'} {content.get('name')} {verdict}{reason}",
            style="green" if content.get("success") else "yellow",
        )
    if kind == "system":
        return Text(content.get("text") or content.get("message") or "", style="dim")
    return Text(content.get("text") or "")


def _clip(text: str, limit: int = 160) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- commands -----------------------------------------------------------------------------------
