"""Judgments: how well the rule-based reader (judgments/parse.py) reads real decisions,
and how fast, over ../shared/corpus/judgments (51 decisions of the Cour de cassation).

    uv run python benchmarks/judgments.py            # all tables
    uv run python benchmarks/judgments.py --only fields,zones,timing

Split: the decisions sorted by sha256 of their id; the first half (26) is `dev`, tuned
on; the second (25) is `heldout`, only reported. The split is printed with the tables.

- fields: share of decisions whose field equals the metadata — date, numbers (the set
  of pourvoi numbers printed in the text), formation (the metadata's `chamber`),
  solution, attacked court (case, accents, hyphens and the site's chamber codes
  ignored) and date, dispositif found (a `dispositif` zone starting where the Court's
  starts, or at "PAR CES MOTIFS" when the decision has no zones), visa recall (share
  of the article numbers of the metadata's applied texts found in the visa).
  Fields the metadata does not give (criminal decisions have no `contested`) are not
  counted; the counted number is shown.
- zones: agreement with the Court's zones — share of non-blank characters given the
  same zone, and share of the Court's zone starts found within 3 characters — for the
  page decisions per split and for the 2 Judilibre API records (the Court's own offsets).
- timing: analysis time per decision (median, max) and for a 50-page decision (a real
  decision with its moyens annexés repeated to 50 pages of 3,000 characters).

- fiche: the extractive fiche d'arrêt (judgments/extractive.py) per decision and for the
  50-page decision — time from the parsed structure to the checked sections, the text
  index included (goal < 2 s) — and the share of its statements that pass the checks.

Extending: add a `Report` to REPORTS (a name and a function of the Corpus returning
the lines to print).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import statistics
import sys
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from legal_assistant.documents.model import Page
from legal_assistant.judgments.model import Judgment
from legal_assistant.judgments.parse import analyse

ROOT = Path(__file__).resolve().parent
CORPUS = Path(os.environ.get("LEGAL_ASSISTANT_CORPUS", ROOT.parent.parent / "shared" / "corpus"))
JUDGMENTS = CORPUS / "judgments"
# Known-wrong metadata (the corpus README): the record's `contested` is filler.
_BAD_CONTESTED = {"judilibre-19-60.222"}


@dataclass
class Decision:
    id: str
    text: str
    meta: dict[str, Any]
    split: str
    judgment: Judgment = field(default_factory=Judgment.not_a_judgment)
    seconds: float = 0.0

    @property
    def api_record(self) -> bool:
        return self.id.startswith("judilibre-")


@dataclass
class Corpus:
    decisions: list[Decision]

    def split(self, name: str) -> list[Decision]:
        return [d for d in self.decisions if d.split == name]


def load() -> Corpus:
    ids = sorted(p.stem for p in JUDGMENTS.glob("*.json"))
    order = sorted(ids, key=lambda i: hashlib.sha256(i.encode()).hexdigest())
    dev = set(order[: (len(order) + 1) // 2])
    decisions = []
    for decision_id in ids:
        with open(JUDGMENTS / f"{decision_id}.txt", encoding="utf-8", newline="") as f:
            text = f.read()
        meta = json.loads((JUDGMENTS / f"{decision_id}.json").read_text(encoding="utf-8"))
        split = "dev" if decision_id in dev else "heldout"
        decisions.append(Decision(decision_id, text, meta, split))
    for d in decisions:
        started = time.perf_counter()
        d.judgment = analyse([Page(number=1, text=d.text)], paginated=False)
        d.seconds = time.perf_counter() - started
    return Corpus(decisions)


# --------------------------------------------------------------------------- fields
def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.lower())
    text = "".join(c for c in text if not unicodedata.combining(c))
    return re.sub(r"[\s'’-]+", " ", text).strip()


def _court_words(court: str) -> list[str]:
    """ "Cour d'appel de paris g1" and "Cour d'appel de Paris" are the same court."""
    words = _fold(re.sub(r"\([^)]*\)", " ", court)).split()
    while words and any(ch.isdigit() for ch in words[-1]):
        words.pop()  # the site's chamber codes: "g1", "14", "3s"
    return words


def same_court(ours: str | None, gold: str) -> bool:
    """Equal, or one name the other's first words: the site shortens some names
    ("Cour nationale de l'incapacité et de la tarification (cnitaat)") and lengthens
    others ("Cour d'appel de saint denis de la réunion") relative to the text."""
    if ours is None:
        return False
    a, b = _court_words(ours), _court_words(gold)
    shorter = min(len(a), len(b))
    return shorter >= 3 and a[:shorter] == b[:shorter]


def _article_key(article: str) -> str:
    return re.sub(r"[\s.]", "", article).upper()


_GOLD_ARTICLE = re.compile(r"(?<![\w°/.-])(?:[LRDA]\.\s?)?\d+(?:-\d+)*(?![\w°])")
_GOLD_NOISE = re.compile(
    r"\b\d{1,2}(?:er)?\s+[a-zéû]+\s+\d{4}\b|n°\s*\d+(?:[-/]\d+)*|alin[ée]as?\s+\d+(?:er)?"
    r"|<[^>]*>|\S*%\S*|\S*\+\S*|tableau\s+n°?\s*\d+"
)


def _gold_articles(meta: dict[str, Any]) -> set[str] | None:
    texts = meta.get("applied_texts") or [v.get("title", "") for v in meta.get("visa") or []]
    if not texts:
        return None
    found: set[str] = set()
    for text in texts:
        text = _GOLD_NOISE.sub(" ", text)
        found |= {_article_key(m.group(0)) for m in _GOLD_ARTICLE.finditer(text)}
    return found or None


def _attacked_gold(d: Decision) -> dict[str, Any] | None:
    if d.id in _BAD_CONTESTED:
        return None
    contested = d.meta.get("contested")
    if not contested or not contested.get("date"):
        return None
    court = contested.get("court") or contested.get("location")
    return {"court": court, "date": contested["date"]}


def _dispositif_found(d: Decision) -> bool:
    ours = [z for z in d.judgment.zones if z.zone == "dispositif"]
    if not ours:
        return False
    gold = (d.meta.get("zones") or {}).get("dispositif")
    if gold:
        return abs(ours[0].char_start - gold[0]["start"]) <= 3
    return d.text[ours[0].char_start :].startswith("PAR CES MOTIFS")


def field_checks(d: Decision) -> dict[str, bool | float | None]:
    """Each field: True/False, None when the metadata does not say."""
    j, meta = d.judgment, d.meta
    numbers = [n for n in meta.get("numbers") or [] if n in d.text]
    attacked = _attacked_gold(d)
    gold_articles = _gold_articles(meta)
    ours = {_article_key(v.article) for v in j.visa}
    # The site's link markup sometimes eats an article's "L." prefix: compare numbers too.
    ours |= {re.sub(r"^[A-Z]+", "", key) for key in ours}
    return {
        "date": j.date == (meta.get("date") or meta.get("decision_date")),
        "numbers": set(j.numbers) == set(numbers),
        "formation": j.formation == meta.get("chamber"),
        "solution": j.solution == meta.get("solution"),
        "attacked court": None
        if attacked is None
        else j.attacked is not None and same_court(j.attacked.court, attacked["court"]),
        "attacked date": None
        if attacked is None
        else j.attacked is not None and j.attacked.date == attacked["date"],
        "dispositif found": _dispositif_found(d),
        "visa recall": None
        if gold_articles is None
        else len(gold_articles & ours) / len(gold_articles),
    }


GOALS = {"date": 0.97, "numbers": 0.97, "formation": 0.97, "solution": 0.95,
         "attacked court": 0.9, "attacked date": 0.9, "dispositif found": 0.97,
         "visa recall": 0.9}  # fmt: skip


def report_fields(corpus: Corpus) -> list[str]:
    lines = ["| field | dev | held-out | goal (held-out) |", "|---|---|---|---|"]
    checks = {name: [field_checks(d) for d in corpus.split(name)] for name in ("dev", "heldout")}
    misses: list[str] = []
    for key, goal in GOALS.items():
        cells = []
        for split in ("dev", "heldout"):
            values = [c[key] for c in checks[split] if c[key] is not None]
            score = sum(float(v) for v in values) / len(values) if values else float("nan")
            cells.append(f"{score:.3f} (n={len(values)})")
            if split == "dev":
                pairs = zip(corpus.split(split), checks[split], strict=True)
                misses += [
                    f"  dev miss {key}: {d.id}"
                    for d, c in pairs
                    if c[key] is not None and float(c[key]) < 1.0
                ]
        lines.append(f"| {key} | {cells[0]} | {cells[1]} | ≥ {goal} |")
    return lines + (["", "Dev misses (held-out misses are not listed):", *misses] if misses else [])


# --------------------------------------------------------------------------- zones
def _labels(length: int, spans: list[tuple[str, int, int]]) -> list[str | None]:
    out: list[str | None] = [None] * length
    for zone, start, end in spans:
        for i in range(max(0, start), min(length, end)):
            out[i] = zone
    return out


def zone_agreement(d: Decision) -> tuple[float, float] | None:
    gold_zones = d.meta.get("zones")
    if not gold_zones:
        return None
    gold = [(z, s["start"], s["end"]) for z, segs in gold_zones.items() for s in segs]
    ours = [(z.zone, z.char_start, z.char_end) for z in d.judgment.zones]
    a, b = _labels(len(d.text), gold), _labels(len(d.text), ours)
    counted = [i for i, ch in enumerate(d.text) if not ch.isspace() and a[i] is not None]
    chars = sum(a[i] == b[i] for i in counted) / len(counted)
    starts = [(z, _skip_space(d.text, s)) for z, s, _ in gold]
    found = sum(any(z == oz and abs(s - os_) <= 3 for oz, os_, _ in ours) for z, s in starts)
    return chars, found / len(starts)


def _skip_space(text: str, at: int) -> int:
    while at < len(text) and text[at].isspace():
        at += 1
    return at


def report_zones(corpus: Corpus) -> list[str]:
    lines = ["| decisions | n | characters in the same zone | zone starts found (±3) |",
             "|---|---|---|---|"]  # fmt: skip
    groups = {
        "page decisions, dev": [d for d in corpus.split("dev") if not d.api_record],
        "page decisions, held-out": [d for d in corpus.split("heldout") if not d.api_record],
        "Judilibre API records (the Court's offsets)": [
            d for d in corpus.decisions if d.api_record
        ],
    }
    for name, decisions in groups.items():
        scores = [s for s in (zone_agreement(d) for d in decisions) if s is not None]
        if scores:
            chars = statistics.mean(s[0] for s in scores)
            starts = statistics.mean(s[1] for s in scores)
            lines.append(f"| {name} | {len(scores)} | {chars:.3f} | {starts:.3f} |")
    for d in corpus.decisions:
        if d.api_record:
            scores = zone_agreement(d)
            if scores:
                lines.append(f"| {d.id} ({d.split}) | 1 | {scores[0]:.3f} | {scores[1]:.3f} |")
    return lines


# --------------------------------------------------------------------------- timing
def fifty_pages(corpus: Corpus, pages: int = 50, per_page: int = 3000) -> list[Page]:
    """The longest decision with its moyens annexés repeated to `pages` pages."""
    base = max(corpus.decisions, key=lambda d: len(d.text)).text.replace("\r", "")
    annex_at = base.find("MOYENS ANNEXES")
    annexes = base[annex_at:] if annex_at >= 0 else base[-20_000:]
    text = base
    while len(text) < pages * per_page:
        text += "\n\n" + annexes
    text = text[: pages * per_page]
    out = []
    for n in range(pages):
        out.append(Page(number=n + 1, text=text[n * per_page : (n + 1) * per_page]))
    return out


def report_timing(corpus: Corpus) -> list[str]:
    times = [d.seconds * 1000 for d in corpus.decisions]
    pages = fifty_pages(corpus)
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        judgment = analyse(pages, paginated=True)
        runs.append(time.perf_counter() - started)
    assert judgment.is_judgment
    chars = sum(len(p.text) for p in pages)
    best, median = min(runs), statistics.median(runs)
    return [
        "| measure | value | goal | ratio (goal / value) |",
        "|---|---|---|---|",
        f"| per decision, median ({len(times)} decisions) "
        f"| {statistics.median(times):.1f} ms | | |",
        f"| per decision, max | {max(times):.1f} ms | | |",
        f"| 50-page decision ({chars:,} chars), median of 5 | {median * 1000:.0f} ms | 500 ms | "
        f"{0.5 / median:.1f}× |",
        f"| 50-page decision, best of 5 | {best * 1000:.0f} ms | | |",
    ]


# --------------------------------------------------------------------------- fiche
def _fiche(judgment: Judgment, pages: list[Page]) -> tuple[float, list[Any]]:
    """Seconds to build the extractive fiche (the text index included), and its sections."""
    import asyncio

    from legal_assistant.judgments.decision import Decision as Read
    from legal_assistant.judgments.decision import PageText
    from legal_assistant.judgments.extractive import ExtractiveFiche

    started = time.perf_counter()
    read = Read(judgment, [PageText(p.number, p.text) for p in pages])
    sections = asyncio.run(ExtractiveFiche(read).build())
    return time.perf_counter() - started, sections


def report_fiche(corpus: Corpus) -> list[str]:
    """Extractive fiche d'arrêt: time per decision, and what share of its statements pass
    the checks (paragraph exists, quotation verbatim under the cited §)."""
    lines = [
        "| measure | value | goal | ratio (goal / value) |",
        "|---|---|---|---|",
    ]
    times: list[float] = []
    counts = {"dev": [0, 0, 0], "heldout": [0, 0, 0]}  # statements, verified, decisions
    for d in corpus.decisions:
        if not d.judgment.is_judgment:
            continue
        seconds, sections = _fiche(d.judgment, [Page(number=1, text=d.text)])
        times.append(seconds)
        statements = [st for s in sections for st in s.statements]
        c = counts[d.split]
        c[0] += len(statements)
        c[1] += sum(st.verified for st in statements)
        c[2] += 1
    median, worst = statistics.median(times), max(times)
    lines.append(
        f"| per decision, median ({len(times)} decisions) | {median * 1000:.1f} ms | 2 s | "
        f"{2 / median:.0f}× |"
    )
    lines.append(f"| per decision, max | {worst * 1000:.1f} ms | 2 s | {2 / worst:.0f}× |")
    pages = fifty_pages(corpus)
    judgment = analyse(pages, paginated=True)
    runs = [_fiche(judgment, pages)[0] for _ in range(3)]
    big = statistics.median(runs)
    lines.append(f"| 50-page decision, median of 3 | {big * 1000:.0f} ms | 2 s | {2 / big:.0f}× |")
    for split, (n, ok, docs) in counts.items():
        share = ok / n if n else 0.0
        lines.append(
            f"| statements verified, {split} ({docs} decisions) | {ok}/{n} = {share:.3f} | | |"
        )
    return lines


@dataclass(frozen=True)
class Report:
    name: str
    title: str
    run: Callable[[Corpus], list[str]]


REPORTS: list[Report] = [
    Report("fields", "Field accuracy", report_fields),
    Report("zones", "Zone agreement with the Court's zones", report_zones),
    Report("timing", "Analysis time (this machine, one process)", report_timing),
    Report("fiche", "Extractive fiche d'arrêt (this machine, one process)", report_fiche),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--only", default="", help="comma-separated report names")
    args = parser.parse_args(argv)
    wanted = {n.strip() for n in args.only.split(",") if n.strip()}
    print("Reading the corpus…", file=sys.stderr, flush=True)
    corpus = load()
    print(f"Split (sha256 of the id): dev {len(corpus.split('dev'))}, held-out "
          f"{len(corpus.split('heldout'))}")  # fmt: skip
    print("  dev:", " ".join(d.id.replace("ECLI_FR_CCASS_2024_", "") for d in corpus.split("dev")))
    print(
        "  held-out:",
        " ".join(d.id.replace("ECLI_FR_CCASS_2024_", "") for d in corpus.split("heldout")),
    )
    for report in REPORTS:
        if wanted and report.name not in wanted:
            continue
        print(f"\n## {report.title}\n")
        print("\n".join(report.run(corpus)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
