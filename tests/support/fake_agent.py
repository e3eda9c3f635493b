#!/usr/bin/env python3
"""A fake agent CLI for runner edge cases only (crashes, stubborn processes, junk output).

Speaks just enough claude stream-json or codex --json; FAKE_AGENT_MODE picks the behaviour:
claude-echo, claude-crash, claude-stubborn, claude-escape, claude-junk, codex-echo, codex-exit.
"""

import json
import os
import signal
import subprocess
import sys

MODE = os.environ.get("FAKE_AGENT_MODE", "claude-echo")
SID = "0000fa4e-0000-4000-8000-000000000001"
TID = "0000fa4e-0000-4000-8000-000000000002"


def out(obj):
    sys.stdout.write((obj if isinstance(obj, str) else json.dumps(obj)) + "\n")
    sys.stdout.flush()


def claude_turn(text):
    out({"type": "system", "subtype": "init", "session_id": SID, "model": "fake"})
    out({"type": "assistant", "session_id": SID,
         "message": {"role": "assistant", "content": [{"type": "text", "text": f"echo: {text}"}]}})
    out({"type": "result", "subtype": "success", "is_error": False, "session_id": SID, "usage": {"output_tokens": 1}})


def claude():
    if MODE == "claude-stubborn":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        child = subprocess.Popen(["sleep", "300"])
        with open(os.environ["FAKE_AGENT_PIDFILE"], "w") as f:
            f.write(str(child.pid))
    if MODE == "claude-escape":
        # A child in a session of its own keeps our stdout open after we are gone.
        child = subprocess.Popen(["sleep", "300"], start_new_session=True)
        with open(os.environ["FAKE_AGENT_PIDFILE"], "w") as f:
            f.write(str(child.pid))
    for line in sys.stdin:
        msg = json.loads(line)
        if msg.get("type") != "user":
            continue
        text = msg["message"]["content"]
        if MODE == "claude-crash":
            out({"type": "system", "subtype": "init", "session_id": SID})
            sys.stderr.write("fatal: boom\n")
            sys.exit(3)
        if MODE == "claude-junk":
            out("this is not json")
            out("[1, 2, 3]")
        claude_turn(text)
    if MODE == "claude-stubborn":
        while True:  # not even a closed stdin ends it
            signal.pause()


def codex():
    argv = sys.argv[1:]
    prompt = argv[-1]
    tid = argv[argv.index("resume") + 1] if "resume" in argv else TID
    out({"type": "thread.started", "thread_id": tid})
    out({"type": "turn.started"})
    if MODE == "codex-exit":
        sys.stderr.write("codex: kaput\n")
        sys.exit(2)
    out({"type": "item.completed", "item": {"id": "item_0", "type": "agent_message",
                                            "text": json.dumps({"prompt": prompt, "argv": argv})}})
    out({"type": "turn.completed", "usage": {"output_tokens": 1}})


if __name__ == "__main__":
    codex() if MODE.startswith("codex") else claude()
