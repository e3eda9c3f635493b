"""Tool rules that let a request run unasked: the workspace's allow-list and what a person chose to
remember for the session.

The syntax is Claude Code's permission-rule syntax: `Tool` (any use of the tool), `Tool(exact)` and
`Tool(prefix:*)` (for shell tools the specifier is matched against the command). `Bash` names the shell
tool of every provider (codex's command_execution too), so one rule works for both agents.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from daemon.validation import validate_tool_rule

__all__ = ["SHELL_TOOLS", "ToolRule", "command_of", "parse_rule", "remember_rule"]

# Tool names whose requests carry a shell command, per provider.
SHELL_TOOLS = frozenset({"Bash", "command_execution"})


def command_of(tool_name: str, tool_input: dict[str, Any]) -> str | None:
    """The shell command a request would run, or None for a tool that is not a shell."""
    if tool_name not in SHELL_TOOLS:
        return None
    command = tool_input.get("command")
    if isinstance(command, list):
        return " ".join(str(c) for c in command)
    return command if isinstance(command, str) else None


@dataclass(frozen=True)
class ToolRule:
    """One allow rule."""

    tool: str
    specifier: str | None = None  # None: any use of the tool

    def matches(self, tool_name: str, tool_input: dict[str, Any]) -> bool:
        shell = command_of(tool_name, tool_input)
        if self.tool == "Bash" and shell is not None:
            pass  # "Bash" covers every provider's shell tool
        elif self.tool != tool_name:
            return False
        if self.specifier is None:
            return True
        if shell is None:
            return False
        command = shell.strip()
        if self.specifier.endswith(":*"):
            prefix = self.specifier[:-2]
            return command == prefix or command.startswith(prefix + " ")
        return command == self.specifier

    def __str__(self) -> str:
        return self.tool if self.specifier is None else f"{self.tool}({self.specifier})"


def parse_rule(text: str) -> ToolRule:
    """`text` as a ToolRule; InvalidArgument naming allowed_tools when it is not one."""
    validate_tool_rule(text)
    if "(" not in text:
        return ToolRule(text)
    tool, _, rest = text.partition("(")
    return ToolRule(tool, rest[:-1])


def remember_rule(tool_name: str, tool_input: dict[str, Any]) -> ToolRule:
    """What "remember" allows for the rest of the session: this exact command for a shell tool, the
    tool itself otherwise."""
    command = command_of(tool_name, tool_input)
    if command is not None:
        return ToolRule(tool_name, command.strip())
    return ToolRule(tool_name)
