#!/usr/bin/env python3
"""A stand-in agent for the event and footprint benchmarks (speaks claude stream-json).

Each user message "emit N every MS" makes it print N assistant lines, one every MS
milliseconds, each carrying the wall-clock time it was written ("t=<time.time()>"),
so the SSE client can measure stdout → SSE latency. "ask N" makes it send N can_use_tool control
requests, one at a time, each stamped with the time it wrote it (input "t"); when an answer arrives it
prints "granted <n> t=<time it read the answer>". Other messages are echoed.
"""

import json
import sys
import time

SID = "bench-stub-session"


def out(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def text_line(text):
    out(
        {
            "type": "assistant",
            "session_id": SID,
            "message": {"role": "assistant", "content": [{"type": "text", "text": text}]},
        }
    )


def ask(count):
    for n in range(count):
        out(
            {
                "type": "control_request",
                "request_id": f"req-{n}",
                "request": {
                    "subtype": "can_use_tool",
                    "tool_name": "Bash",
                    "tool_use_id": f"toolu_{n}",
                    "input": {"command": f"echo {n}", "n": n, "t": time.time()},
                },
            }
        )
        while True:
            answer = json.loads(sys.stdin.readline() or "{}")
            if answer.get("type") == "control_response" or not answer:
                break
        text_line(f"granted {n} t={time.time():.6f}")


def main():
    out({"type": "system", "subtype": "init", "session_id": SID, "model": "stub"})
    for line in sys.stdin:
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if msg.get("type") != "user":
            continue
        content = msg["message"]["content"]
        text = (
            content if isinstance(content, str) else " ".join(c.get("text", "") for c in content if isinstance(c, dict))
        )
        words = text.split()
        if len(words) == 2 and words[0] == "ask":
            ask(int(words[1]))
        elif len(words) == 4 and words[0] == "emit" and words[2] == "every":
            count, every = int(words[1]), float(words[3]) / 1000.0
            next_at = time.monotonic()
            for i in range(count):
                text_line(f"tick {i} t={time.time():.6f}")
                next_at += every
                delay = next_at - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
        else:
            text_line(f"echo: {text}")
        out(
            {
                "type": "result",
                "subtype": "success",
                "is_error": False,
                "session_id": SID,
                "usage": {"output_tokens": 1},
            }
        )


if __name__ == "__main__":
    main()
