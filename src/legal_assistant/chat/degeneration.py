"""Watching generated text for degeneration: the loops small models fall into.

Measured on the bundled SmolLM2-135M (docs/answers.md): asked "Bonjour, qu'est-ce qu'un
contrat de bail ?", it repeats one sentence until `max_tokens` — 1,024 tokens, ~70 s — and
a repetition penalty alone only turns the loop into rambling. So every generation path
watches its own stream and stops it when the text degenerates, keeping what came before.

`LoopWatcher` is fed the streamed text, delta by delta, and says when it has degenerated:

* **repetition** — the same sequence of words again and again: at least `min_repeats`
  copies back to back covering at least `min_span_words`, or (a long sentence or
  paragraph repeated verbatim) two copies of a unit of at least `long_unit_words`. The
  kept text ends with the first copy (completed to the end of its sentence).
* **low diversity** — a near-loop whose copies differ by a word or two: over the last
  `window` word trigrams, the share of distinct ones falls under `min_distinct`. Ordinary
  prose, lists and legal text keep it near 1 (docs/answers.md gives the figures); the kept
  text ends where the window starts (extended to the end of its first sentence).

Words are runs of non-space characters, compared case-folded and without surrounding
punctuation, so whitespace and capitalisation do not hide a loop; a run of more than
`_PIECE_CHARS` characters without a space ("=====…", text without spaces) is cut into
pieces that count as words. Cost: each new word is compared only with its earlier
occurrences within `max_unit_words`, and the trigram window is a running counter — a few
microseconds per word, nothing next to the model's own time.

The watcher is pure (no I/O, no clock) and owned by one stream. Use::

    watcher = LoopWatcher()
    for delta in stream:
        emit(delta)
        if watcher.feed(delta):            # a Degeneration: stop the stream at once
            break
    kept = watcher.kept_text()             # the text without the repeated tail
"""

from __future__ import annotations

import re
from collections import Counter, deque
from dataclasses import dataclass
from typing import Literal

DegenerationKind = Literal["repetition", "low_diversity"]

_WORD = re.compile(r"\S+")
_STRIP = ".,;:!?…«»\"'“”‘’()[]{}*_-–—"
_SENTENCE_END = (".", "!", "?", "…", ":")
# A run of non-space characters longer than this is cut into words of this size.
_PIECE_CHARS = 32


@dataclass(frozen=True, slots=True)
class LoopLimits:
    """When text counts as degenerate (defaults measured in docs/answers.md)."""

    min_repeats: int = 3
    min_span_words: int = 24
    long_unit_words: int = 16
    max_unit_words: int = 200
    window: int = 120
    min_distinct: float = 0.35


@dataclass(frozen=True, slots=True)
class Degeneration:
    """What was found: its kind, the length in words of the repeated unit (repetition
    only), and `keep_chars` — the text to keep is the first `keep_chars` characters."""

    kind: DegenerationKind
    keep_chars: int
    unit_words: int | None = None


class LoopWatcher:
    """Feed it a stream's text; it returns a `Degeneration` once the text degenerates.

    After a detection, `feed` keeps returning the same `Degeneration` (the caller stops
    reading). `finish()` flushes the last word when the stream ended on its own.
    """

    def __init__(self, limits: LoopLimits | None = None) -> None:
        self.limits = limits or LoopLimits()
        self._parts: list[str] = []
        self._length = 0  # characters fed so far
        self._pending = ""  # the trailing word, possibly incomplete
        self._pending_start = 0
        self._ids: dict[str, int] = {}  # word -> small int (cheap equality, hashing)
        self._words: list[int] = []
        self._ends: list[int] = []  # character offset just after each word
        self._seen: dict[int, deque[int]] = {}  # word -> its recent positions
        self._runs: dict[int, tuple[int, int]] = {}  # unit length -> (last index, run)
        self._trigrams: deque[tuple[int, int, int]] = deque()
        self._trigram_counts: Counter[tuple[int, int, int]] = Counter()
        self.found: Degeneration | None = None

    @property
    def text(self) -> str:
        """Everything fed so far."""
        if len(self._parts) > 1:
            self._parts = ["".join(self._parts)]
        return self._parts[0] if self._parts else ""

    def kept_text(self) -> str:
        """The text without its degenerate tail (all of it when none was found)."""
        text = self.text
        return text if self.found is None else text[: self.found.keep_chars].rstrip()

    def feed(self, delta: str) -> Degeneration | None:
        if self.found is not None or not delta:
            return self.found
        self._parts.append(delta)
        base = self._pending_start
        chunk = self._pending + delta
        self._length += len(delta)
        matches = list(_WORD.finditer(chunk))
        self._pending = ""
        self._pending_start = self._length
        if matches and matches[-1].end() == len(chunk):  # the last word may go on
            last = matches.pop()
            self._pending, self._pending_start = last.group(), base + last.start()
        for m in matches:
            if self._word(m.group(), base + m.start()):
                return self.found
        while len(self._pending) > 2 * _PIECE_CHARS:  # no space for a long while
            piece = self._pending[:_PIECE_CHARS]
            self._pending = self._pending[_PIECE_CHARS:]
            self._pending_start += _PIECE_CHARS
            if self._word(piece, self._pending_start - _PIECE_CHARS):
                return self.found
        return None

    def finish(self) -> Degeneration | None:
        """The stream ended: judge its last word too."""
        if self.found is None and self._pending:
            pending, self._pending = self._pending, ""
            self._word(pending, self._pending_start)
        return self.found

    # ------------------------------------------------------------------ per word
    def _word(self, raw: str, start: int) -> bool:
        """Account for one complete word; True when the text has degenerated."""
        for piece_start in range(0, len(raw), _PIECE_CHARS):
            piece = raw[piece_start : piece_start + _PIECE_CHARS]
            end = start + piece_start + len(piece)
            key = piece.casefold().strip(_STRIP) or piece
            word = self._ids.setdefault(key, len(self._ids))
            self._words.append(word)
            self._ends.append(end)
            if self._repetition(word) or self._diversity():
                return True
        return False

    def _repetition(self, word: int) -> bool:
        lim = self.limits
        i = len(self._words) - 1
        seen = self._seen.setdefault(word, deque())
        while seen and i - seen[0] > lim.max_unit_words:
            seen.popleft()
        for j in reversed(seen):  # the shortest unit first: "bail bail…" is one word
            unit = i - j
            last = self._runs.get(unit)
            run = last[1] + 1 if last is not None and last[0] == i - 1 else 1
            self._runs[unit] = (i, run)
            # `run` words equal the word `unit` before them: the span repeating is
            # `run + unit` words long, i.e. (run + unit) / unit copies of the unit.
            copies_ok = run >= (lim.min_repeats - 1) * unit and run + unit >= lim.min_span_words
            long_ok = unit >= lim.long_unit_words and run >= unit
            if copies_ok or long_ok:
                # The copies may start mid-sentence (the text before the loop can end
                # like the unit does): keep the first copy, then on to the end of its
                # sentence when one ends within the next copy.
                last_kept = i - run  # the first copy's last word
                for k in range(last_kept, min(i, last_kept + unit)):
                    if self._word_ends_sentence(k):
                        last_kept = k
                        break
                self.found = Degeneration("repetition", self._ends[last_kept], unit)
                return True
        seen.append(i)
        return False

    def _diversity(self) -> bool:
        lim = self.limits
        w = self._words
        if len(w) < 3:
            return False
        trigram = (w[-3], w[-2], w[-1])
        self._trigrams.append(trigram)
        self._trigram_counts[trigram] += 1
        if len(self._trigrams) > lim.window:
            old = self._trigrams.popleft()
            self._trigram_counts[old] -= 1
            if not self._trigram_counts[old]:
                del self._trigram_counts[old]
        if len(self._trigrams) < lim.window:
            return False
        if len(self._trigram_counts) >= lim.min_distinct * lim.window:
            return False
        start = len(w) - lim.window - 2  # the window's first word
        keep = self._ends[start - 1] if start > 0 else 0
        for k in range(start, min(len(w), start + lim.window // 4)):
            if self._word_ends_sentence(k):
                keep = self._ends[k]
                break
        self.found = Degeneration("low_diversity", keep)
        return True

    def _word_ends_sentence(self, k: int) -> bool:
        end = self._ends[k]
        return self.text[end - 1 : end].endswith(_SENTENCE_END)
