"""The retrieval benchmarks' corpus: the Code civil articles of ../shared/corpus (one
Markdown file per article), each article a document of one passage labelled "Article N",
embedded by the real supervised engine. Vectors are cached on disk by a hash of the
model and the texts, so a second run only embeds the questions."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from legal_assistant.config import Settings
from legal_assistant.documents.embedder import Embedder
from legal_assistant.documents.model import Passage
from legal_assistant.runtime.supervisor import Supervisor

ROOT = Path(__file__).resolve().parent
CORPUS = Path(os.environ.get("LEGAL_ASSISTANT_CORPUS", ROOT.parent.parent / "shared" / "corpus"))
QUESTIONS = ROOT / "data" / "questions.jsonl"
OFFTOPIC = ROOT / "data" / "offtopic.jsonl"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "legal-assistant-bench"
_TITLE = re.compile(r"^# (Article .+)$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Article:
    document_id: str  # "article-1240": the file's stem, what questions name as gold
    label: str  # "Article 1240"
    text: str


def articles() -> list[Article]:
    found = []
    for path in sorted((CORPUS / "code-civil").rglob("article-*.md")):
        raw = path.read_text(encoding="utf-8")
        title = _TITLE.search(raw)
        body = _TITLE.sub("", raw, count=1).strip()
        if body:
            found.append(Article(path.stem, title.group(1) if title else path.stem, body))
    return found


def passage_of(article: Article) -> Passage:
    return Passage(
        ordinal=0, page=1, paragraph=1, char_start=0, char_end=len(article.text),
        label=article.label, text=article.text,
    )  # fmt: skip


def load_jsonl(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def bench_settings() -> Settings:
    data = Path(tempfile.mkdtemp(prefix="la-bench-retrieval-"))
    (data / "hf" / "hub").mkdir(parents=True, exist_ok=True)
    return Settings(data_dir=data, hf_home=data / "hf", load_timeout_s=120)


async def embed_cached(embedder: Embedder, texts: list[str]) -> np.ndarray:
    digest = hashlib.sha256(embedder.model_id.encode())
    for t in texts:
        digest.update(hashlib.sha256(t.encode()).digest())
    path = CACHE / f"passages-{digest.hexdigest()[:24]}.npy"
    if path.is_file():
        return np.load(path)
    vectors = await embedder.passages(texts)
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, vectors)
    os.replace(tmp, path)
    return vectors


async def with_embedder(work):  # type: ignore[no-untyped-def]
    """Run `await work(embedder, supervisor)` with a supervised embedding engine, then
    shut it down."""
    settings = bench_settings()
    supervisor = Supervisor(settings)
    embedder = Embedder(supervisor, settings)
    try:
        return await work(embedder, supervisor)
    finally:
        await embedder.aclose()
        await asyncio.wait_for(supervisor.shutdown(), 30)
