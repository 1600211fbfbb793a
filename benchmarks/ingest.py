"""Ingestion and search at scale.

    uv run python benchmarks/ingest.py                     # everything (several minutes)
    uv run python benchmarks/ingest.py --part ingest       # throughput only
    uv run python benchmarks/ingest.py --part search --sizes 1000,10000

1. Throughput (real PDFs built from the Code civil, 3 articles a page): the supervised
   embedding engine's raw rate (its /v1/embeddings hit directly, batches of 32) against
   - embed + index: Embedder (leases, batches) + DossierIndex.add_document, and
   - the whole pipeline: extraction worker → passages → embed → index, two documents
     at a time (as `ingest_workers=2`), pages/s and passages/s.
   Raw and pipeline runs alternate on the same passages (this 2-core machine is noisy).
2. Search at 1k / 10k / 100k passages: synthetic passages made from real ones (each a
   mix of words of two articles; its vector the normalised mix of theirs plus noise, so
   the e5 geometry is kept), queried with the 84 questions' real query vectors:
   hybrid search latency p50/p99 (BM25 + dense + fusion + fetch + highlights; the query
   embedding, ~40 ms on an idle machine, is measured apart), dense recall@10 of the HNSW
   graph against exact search, and numpy brute force for comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT.parent / "tests"))

from _corpus import QUESTIONS, articles, embed_cached, load_jsonl, with_embedder  # noqa: E402

from documents.builders import build_pdf, corpus_articles  # noqa: E402
from legal_assistant.documents.embedder import Embedder  # noqa: E402
from legal_assistant.documents.extract import extract_document  # noqa: E402
from legal_assistant.documents.index import DossierIndex  # noqa: E402
from legal_assistant.documents.model import Passage  # noqa: E402
from legal_assistant.documents.passages import split_passages  # noqa: E402
from legal_assistant.documents.retrieval import search_mode  # noqa: E402
from legal_assistant.runtime.supervisor import Supervisor  # noqa: E402


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# ------------------------------------------------------------------ 1. throughput
def build_pdfs(directory: Path, docs: int, pages: int) -> list[Path]:
    chosen = corpus_articles(docs * pages * 3, start=200, max_chars=700)
    paths = []
    for d in range(docs):
        mine = chosen[d * pages * 3 : (d + 1) * pages * 3]
        page_blocks = []
        for p in range(pages):
            blocks: list[str] = []
            for art in mine[p * 3 : (p + 1) * 3]:
                blocks += [art.heading, *[b for b in art.text.split("\n\n") if b.strip()]]
            page_blocks.append(blocks)
        paths.append(build_pdf(directory / f"doc-{d}.pdf", page_blocks))
    return paths


async def raw_rate(
    supervisor: Supervisor, model_id: str, texts: list[str], batch: int = 32, parallel: int = 1
) -> float:
    """Passages/s of the engine itself: its endpoint hit directly, by `parallel` clients
    (one per engine worker) each sending batches of `batch` one after the other."""
    async with supervisor.lease(model_id) as lease:
        url = f"{lease.engine.base_url}/v1/embeddings"
        batches = [texts[i : i + batch] for i in range(0, len(texts), batch)]
        async with httpx.AsyncClient(trust_env=False, timeout=None) as client:

            async def client_loop(mine: list[list[str]]) -> None:
                for chunk in mine:
                    body = {"model": lease.engine.served_model, "input": chunk,
                            "input_type": "passage", "encoding_format": "base64"}  # fmt: skip
                    (await client.post(url, json=body)).raise_for_status()

            t0 = time.perf_counter()
            await asyncio.gather(*(client_loop(batches[k::parallel]) for k in range(parallel)))
            return len(texts) / (time.perf_counter() - t0)


async def pipeline(
    embedder: Embedder, pdfs: list[Path], directory: Path, extract: bool,
    cached: dict[Path, list[Passage]],
) -> tuple[float, int, int]:  # fmt: skip
    """(seconds, pages, passages) to ingest every PDF, two at a time."""
    index = DossierIndex(directory, embedder.dimension)
    lock = asyncio.Lock()  # one writer, as DossierLibrary does
    pages = 0

    async def one(path: Path) -> int:
        nonlocal pages
        if extract:
            extracted = await extract_document(path, path.name, ocr=False)
            passages = split_passages(extracted)
            pages += len(extracted.pages)
        else:
            passages = cached[path]
        vectors = await embedder.passages([p.text for p in passages])
        async with lock:
            await asyncio.to_thread(index.add_document, path.stem, passages, vectors)
        return len(passages)

    gate = asyncio.Semaphore(2)  # two documents at a time, as ingest_workers=2

    async def gated(path: Path) -> int:
        async with gate:
            return await one(path)

    t0 = time.perf_counter()
    counts = await asyncio.gather(*(gated(p) for p in pdfs))
    return time.perf_counter() - t0, pages, sum(counts)


async def throughput(
    embedder: Embedder, supervisor: Supervisor, runs: int, docs: int, pages: int
) -> None:
    with tempfile.TemporaryDirectory(prefix="la-ingest-") as tmp:
        root = Path(tmp)
        pdfs = build_pdfs(root, docs, pages)
        cached = {}
        for p in pdfs:
            cached[p] = split_passages(await extract_document(p, p.name, ocr=False))
        texts = [ps.text for p in pdfs for ps in cached[p]]
        await embedder.query("warm-up")  # the engine's cold start is not ingestion
        raw, raw_doc, embed_index, full = [], [], [], []
        per_doc = max(1, len(texts) // len(pdfs))
        pages = 0
        for r in range(runs):
            slots = embedder.queue.slots  # one client per engine worker: all it can do
            raw.append(await raw_rate(supervisor, embedder.model_id, texts, parallel=slots))
            raw_doc.append(
                await raw_rate(supervisor, embedder.model_id, texts, per_doc, parallel=slots)
            )
            secs, _, n = await pipeline(embedder, pdfs, root / f"ei-{r}", False, cached)
            embed_index.append(n / secs)
            secs, pages, n = await pipeline(embedder, pdfs, root / f"full-{r}", True, cached)
            full.append(n / secs)
            full_pages = pages / secs
        r_med = statistics.median(raw)
        print(f"\n{len(pdfs)} PDFs, {pages} pages, {len(texts)} passages; medians of {runs} runs")
        print(f"{'measure':36} {'passages/s':>10} {'vs raw':>7}")
        print(f"{'engine raw (direct, batches of 32)':36} {r_med:>10.2f} {1.0:>7.3f}")
        d_med = statistics.median(raw_doc)
        label = f"engine raw (batches of {per_doc}: a document)"
        print(f"{label:36} {d_med:>10.2f} {d_med / r_med:>7.3f}")
        e_med, f_med = statistics.median(embed_index), statistics.median(full)
        print(f"{'embed + index (Embedder, DossierIndex)':36} {e_med:>10.2f} {e_med / r_med:>7.3f}")
        print(
            f"{'full pipeline (extract..index, 2 at once)':36} {f_med:>10.2f} {f_med / r_med:>7.3f}"
        )
        print(f"full pipeline pages/s (last run): {full_pages:.2f}")


# ------------------------------------------------------------------ 2. search at scale
class Precomputed:
    """Query vectors embedded once by the engine (the search is what is timed here)."""

    model_id = "embed:multilingual-e5-small"

    def __init__(self, vectors: dict[str, np.ndarray]) -> None:
        self.vectors = vectors

    async def query(self, text: str) -> np.ndarray:
        return self.vectors[text]


def synthetic(
    size: int, corpus: list[Any], vectors: np.ndarray, seed: int = 0
) -> tuple[list[Passage], np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, len(corpus), size)
    b = rng.integers(0, len(corpus), size)
    w = rng.uniform(0.55, 0.9, size)[:, None]
    mixed = w * vectors[a] + (1 - w) * vectors[b] + rng.normal(0, 0.01, (size, vectors.shape[1]))
    mixed /= np.linalg.norm(mixed, axis=1, keepdims=True)
    words = [c.text.split() for c in corpus]
    passages = []
    for i in range(size):
        wa, wb = words[a[i]], words[b[i]]
        text = " ".join(
            wa[: max(8, int(len(wa) * w[i, 0]))] + wb[: max(4, int(len(wb) * (1 - w[i, 0])))]
        )
        passages.append(Passage(i % 1000, 1 + (i % 1000) // 10, None, 0, len(text), None, text))
    return passages, mixed.astype(np.float32)


async def search_scale(embedder: Embedder, sizes: list[int]) -> None:
    corpus = articles()
    corpus_vecs = await embed_cached(embedder, [c.text for c in corpus])
    questions = [str(q["question"]) for q in load_jsonl(QUESTIONS)]
    qtimes, qvecs = [], {}
    for q in questions:
        t0 = time.perf_counter()
        qvecs[q] = await embedder.query(q)
        qtimes.append(time.perf_counter() - t0)
    p50, p99 = pct(qtimes, 0.5) * 1e3, pct(qtimes, 0.99) * 1e3
    print(
        f"\nquery embedding (engine, {len(qtimes)} questions): p50 {p50:.1f} ms, p99 {p99:.1f} ms"
    )
    pre = Precomputed(qvecs)
    print(f"{'passages':>9} {'build s':>8} {'hybrid p50':>10} {'p99':>8} {'dense HNSW':>10} "
          f"{'exact':>8} {'numpy':>8} {'recall@10':>9}")  # fmt: skip
    for size in sizes:
        passages, vecs = synthetic(size, corpus, corpus_vecs)
        with tempfile.TemporaryDirectory(prefix="la-scale-") as tmp:
            index = DossierIndex(Path(tmp), 384)
            t0 = time.perf_counter()
            for start in range(0, size, 1000):  # documents of 1,000 passages
                chunk = passages[start : start + 1000]
                index.add_document(f"doc-{start // 1000}", chunk, vecs[start : start + 1000])
            build = time.perf_counter() - t0
            lat = []
            for _ in range(2):
                for q in questions:
                    t1 = time.perf_counter()
                    await search_mode(index, pre, q, 10, mode="hybrid")
                    lat.append(time.perf_counter() - t1)
            hnsw, exact, brute, recall = [], [], [], []
            for q in questions:
                v = qvecs[q]
                t1 = time.perf_counter()
                approx = index.dense_search(v, 10, exact=False)
                hnsw.append(time.perf_counter() - t1)
                t1 = time.perf_counter()
                truth = index.dense_search(v, 10, exact=True)
                exact.append(time.perf_counter() - t1)
                t1 = time.perf_counter()
                np.argpartition(-(vecs @ v), 10)[:10]
                brute.append(time.perf_counter() - t1)
                recall.append(len({k for k, _ in approx} & {k for k, _ in truth}) / 10)
            ms = lambda xs, p: pct(xs, p) * 1e3  # noqa: E731
            print(f"{size:>9} {build:>8.1f} {ms(lat, .5):>8.1f}ms {ms(lat, .99):>6.1f}ms "
                  f"{ms(hnsw, .5):>8.2f}ms {ms(exact, .5):>6.2f}ms {ms(brute, .5):>6.2f}ms "
                  f"{statistics.fmean(recall):>9.3f}")  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--part", choices=("all", "ingest", "search"), default="all")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--docs", type=int, default=4)
    parser.add_argument("--pages", type=int, default=16, help="per document (3 articles each)")
    parser.add_argument("--sizes", default="1000,10000,100000")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]

    async def work(embedder: Embedder, supervisor: Supervisor) -> None:
        if args.part in ("all", "ingest"):
            await throughput(embedder, supervisor, args.runs, args.docs, args.pages)
        if args.part in ("all", "search"):
            await search_scale(embedder, sizes)

    asyncio.run(with_embedder(work))


if __name__ == "__main__":
    main()
