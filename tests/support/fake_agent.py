#!/usr/bin/env python3
"""A fake agent CLI for runner edge cases only (crashes, stubborn processes, junk output).

Speaks just enough claude stream-json or codex app-server JSON-RPC; FAKE_AGENT_MODE picks the behaviour:
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
    out(
        {
            "type": "assistant",
            "session_id": SID,
            "message": {"role": "assistant", "content": [{"type": "text", "text": f"echo: {text}"}]},
        }
    )
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
    """Just enough `codex app-server`: the handshake, a thread, and one echoed answer per turn/start."""
    argv = sys.argv[1:]
    if MODE == "codex-exit":
        sys.stderr.write("codex: kaput\n")
        sys.exit(2)
    turn = 0
    for line in sys.stdin:
        msg = json.loads(line)
        method, rid, params = msg.get("method"), msg.get("id"), msg.get("params") or {}
        if method == "initialize":
            out({"id": rid, "result": {"userAgent": "fake"}})
        elif method in ("thread/start", "thread/resume"):
            out({"id": rid, "result": {"thread": {"id": params.get("threadId") or TID}}})
        elif method == "turn/start":
            turn += 1
            tid = f"turn-{turn}"
            out({"id": rid, "result": {"turn": {"id": tid, "status": "inProgress"}}})
            text = params["input"][0]["text"]
            out(
                {
                    "method": "item/completed",
                    "params": {
                        "turnId": tid,
                        "item": {
                            "id": f"msg-{turn}",
                            "type": "agentMessage",
                            "text": json.dumps({"prompt": text, "argv": argv}),
                        },
                    },
                }
            )
            out({"method": "turn/completed", "params": {"turn": {"id": tid, "status": "completed"}}})


if __name__ == "__main__":
    codex() if MODE.startswith("codex") else claude()
