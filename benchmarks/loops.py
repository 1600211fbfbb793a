"""Runaway answers (issue 20): how long the README question takes, and how often a loop is
cut, on the bundled model.

Against `legal-assistant serve` (a subprocess, temp data dir), warm engine:

1. "before": the README questions straight to the engine through the gateway's `/v1`
   (passed through untouched: no loop watcher) with max_tokens 1,024, the old chat turn;
2. "after": the same questions as chat turns (`/api/chat/stream`: the loop watcher, the
   chat max_tokens default, the model's sampling defaults);
3. chat turns on the question sets of `benchmarks/data/` (the first `--limit` of each
   language of questions.jsonl, and of offtopic.jsonl): time per answer, tokens, and how
   each ended (cut loop / max_tokens / natural end);
4. the watcher's own cost: the 51 decisions of the shared corpus fed in 4-character
   deltas (microseconds per word; none may be cut).

    uv run python benchmarks/loops.py [--limit 6] [--skip-before] [--watcher-only]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gateway import serve

BUNDLED = "mlx:smollm2-135m"
README_QUESTIONS = [
    "Qu'est-ce qu'un contrat de bail ?",
    "Bonjour, qu'est-ce qu'un contrat de bail ?",
]
DATA = Path(__file__).resolve().parent / "data"


def chat_turn(client: httpx.Client, url: str, question: str, language: str) -> dict[str, Any]:
    """One chat turn: seconds, tokens streamed, how it ended."""
    t0 = time.monotonic()
    tokens = 0
    done: dict[str, Any] = {}
    body = {"message": question, "model_id": BUNDLED, "language": language}
    with client.stream("POST", f"{url}/api/chat/stream", json=body) as resp:
        resp.raise_for_status()
        event = ""
        for line in resp.iter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:") and event == "token":
                tokens += 1
            elif line.startswith("data:") and event in ("done", "error"):
                done = {"event": event, **json.loads(line[5:])}
    return {
        "s": time.monotonic() - t0,
        "tokens": tokens,
        "ended": done.get("stopped") or ("error" if done.get("event") == "error" else "stop"),
    }


def raw_turn(client: httpx.Client, url: str, question: str) -> dict[str, Any]:
    """The same question sent to the engine untouched (no watcher), max_tokens 1,024,
    streamed (progress every 100 tokens)."""
    from legal_assistant.chat.prompts import system_prompt

    t0 = time.monotonic()
    body = {
        "model": BUNDLED,
        "messages": [
            {"role": "system", "content": system_prompt("fr")},
            {"role": "user", "content": question},
        ],
        "max_tokens": 1024,
        "stream": True,
    }
    tokens, reason = 0, None
    with client.stream("POST", f"{url}/v1/chat/completions", json=body) as resp:
        resp.raise_for_status()
        for line in resp.iter_lines():
            if not line.startswith("data: {"):
                continue
            choices = json.loads(line[6:]).get("choices") or [{}]
            if (choices[0].get("delta") or {}).get("content"):
                tokens += 1
                if tokens % 100 == 0:
                    print(f"  {tokens} tokens, {time.monotonic() - t0:.0f} s", file=sys.stderr)
            reason = choices[0].get("finish_reason") or reason
    return {
        "s": time.monotonic() - t0,
        "tokens": tokens,
        "ended": "max_tokens" if reason == "length" else "stop",
    }


def question_sets(limit: int) -> dict[str, list[tuple[str, str]]]:
    sets: dict[str, list[tuple[str, str]]] = {}
    for name in ("questions", "offtopic"):
        rows = [json.loads(x) for x in (DATA / f"{name}.jsonl").read_text().splitlines() if x]
        for lang in ("fr", "en"):
            picked = [(r["question"], lang) for r in rows if r.get("lang", "fr") == lang][:limit]
            if picked:
                sets[f"{name}.jsonl {lang}"] = picked
    return sets


def summary(label: str, runs: list[dict[str, Any]]) -> str:
    times = [r["s"] for r in runs]
    ended = [r["ended"] for r in runs]
    return (
        f"| {label} | {len(runs)} | {statistics.median(times):.1f} | {max(times):.1f} | "
        f"{statistics.median(r['tokens'] for r in runs):.0f} | {ended.count('repetition')} | "
        f"{ended.count('max_tokens')} | {ended.count('stop')} | {ended.count('error')} |"
    )


def watcher_cost() -> str:
    from legal_assistant.chat.degeneration import LoopWatcher

    corpus = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "judgments"
    if not corpus.is_dir():
        corpus = Path("/work/shared/corpus/judgments")
    texts = [p.read_text() for p in sorted(corpus.glob("*.txt"))]
    words = sum(len(t.split()) for t in texts)
    cut = 0
    t0 = time.perf_counter()
    for text in texts:
        watcher = LoopWatcher()
        for i in range(0, len(text), 4):
            if watcher.feed(text[i : i + 4]):
                cut += 1
                break
    elapsed = time.perf_counter() - t0
    return (
        f"watcher: {len(texts)} decisions, {words} words in 4-char deltas: "
        f"{elapsed * 1e6 / words:.1f} µs per word, {cut} cut"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=6, help="questions per set and language")
    parser.add_argument("--skip-before", action="store_true", help="no 1,024-token baseline")
    parser.add_argument("--watcher-only", action="store_true", help="only the watcher's cost")
    args = parser.parse_args()
    print(watcher_cost())
    if args.watcher_only:
        return
    with serve() as backend, httpx.Client(trust_env=False, timeout=600) as client:
        url = backend.url
        print("warming the bundled model...", file=sys.stderr)
        client.post(
            f"{url}/v1/chat/completions",
            json={
                "model": BUNDLED,
                "messages": [{"role": "user", "content": "Hi"}],
                "max_tokens": 1,
            },
        ).raise_for_status()
        rows = []
        for q in README_QUESTIONS:
            if not args.skip_before:
                print(f"before: {q}", file=sys.stderr)
                rows.append(summary(f"before (raw /v1, 1,024): {q}", [raw_turn(client, url, q)]))
            print(f"after: {q}", file=sys.stderr)
            rows.append(summary(f"after (chat turn): {q}", [chat_turn(client, url, q, "fr")]))
        for name, questions in question_sets(args.limit).items():
            runs = []
            for i, (q, lang) in enumerate(questions, 1):
                print(f"{name} {i}/{len(questions)}", file=sys.stderr)
                runs.append(chat_turn(client, url, q, lang))
            rows.append(summary(name, runs))
    print(
        "| run | answers | median s | max s | median tokens | loop cut | max_tokens | "
        "natural end | error |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
