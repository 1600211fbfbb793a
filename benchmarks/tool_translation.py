"""What translating one engine chunk costs the gateway, text and tool calls, per protocol:
Anthropic (`gateway/anthropic_reply.py`) and Ollama (`gateway/ollama.py`,
`gateway/ollama_tools.py`), against decoding the same chunk's JSON — the work every
translated chunk needs anyway (`api/relay.py` decodes each `data:` line). Pure CPU, no
server: the ratio says whether translation is a cost next to the decode it follows.

    uv run python benchmarks/tool_translation.py [--chunks 4000] [--repeats 15]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from typing import Any

from legal_assistant.gateway import ollama as ollama_tr
from legal_assistant.gateway.anthropic_reply import MessageBuilder


def chunks(kind: str, n: int) -> list[dict[str, Any]]:
    """`n` OpenAI stream chunks: text words, or one tool call's argument fragments (as
    llama-server streams them: a head with id and name, then pieces)."""
    if kind == "text":
        return [{"choices": [{"index": 0, "delta": {"content": f" mot{i}"}}]} for i in range(n)]
    head = {"index": 0, "id": "call_1", "type": "function",
            "function": {"name": "lire_fichier", "arguments": ""}}  # fmt: skip
    out = [{"choices": [{"index": 0, "delta": {"tool_calls": [head]}}]}]
    piece = {"index": 0, "function": {"arguments": '"a",'}}
    out += [{"choices": [{"index": 0, "delta": {"tool_calls": [piece]}}]}] * (n - 1)
    return out


def best_us(run: Callable[[], None], n: int, repeats: int) -> float:
    """Fastest of `repeats` runs, per chunk (the machine is shared: the minimum is the
    least disturbed figure)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return min(times) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chunks", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    n, repeats = args.chunks, args.repeats
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; {n} chunks")
    print(f"{'chunk kind / protocol':<34}{'decode µs':>10}{'translate µs':>14}{'ratio':>8}")
    for kind in ("text", "tool call"):
        data = chunks(kind, n)
        raw = [json.dumps(c).encode() for c in data]
        decode = best_us(lambda raw=raw: [json.loads(r) for r in raw], n, repeats)

        def anthropic(data: list[dict[str, Any]] = data) -> None:
            b = MessageBuilder("m", tools=True)
            b.start()
            for c in data:
                b.feed(c)
            b.finish()

        def ollama(data: list[dict[str, Any]] = data) -> None:
            r = ollama_tr.Reply("m", "chat")
            for c in data:
                text = r.feed(c)
                if text:
                    r.line(text)
            if r.tool_calls.calls:
                r.tool_calls.calls[0].arguments[:] = ["{}"]  # valid JSON for the line
                r.calls_line()

        for name, run in (("anthropic", anthropic), ("ollama", ollama)):
            cost = best_us(run, n, repeats)
            label = f"{kind} / {name}"
            print(f"{label:<34}{decode:>10.2f}{cost:>14.2f}{cost / decode:>7.2f}x")


if __name__ == "__main__":
    main()
