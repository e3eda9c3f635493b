#!/usr/bin/env python3
"""A stand-in agent for the event and footprint benchmarks (speaks claude stream-json).

Each user message "emit N every MS" makes it print N assistant lines, one every MS
milliseconds, each carrying the wall-clock time it was written ("t=<time.time()>"),
so the SSE client can measure stdout → SSE latency. Other messages are echoed.
"""

import json
import sys
import time

SID = "bench-stub-session"


def out(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def text_line(text):
    out({"type": "assistant", "session_id": SID,
         "message": {"role": "assistant", "content": [{"type": "text", "text": text}]}})


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
        text = content if isinstance(content, str) else " ".join(
            c.get("text", "") for c in content if isinstance(c, dict))
        words = text.split()
        if len(words) == 4 and words[0] == "emit" and words[2] == "every":
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
        out({"type": "result", "subtype": "success", "is_error": False, "session_id": SID,
             "usage": {"output_tokens": 1}})


if __name__ == "__main__":
    main()
