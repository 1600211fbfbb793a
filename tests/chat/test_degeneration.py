"""The degeneration watcher (chat/degeneration.py): pure, fed text as a stream would be.

Loops are written the way models write them (the bundled model's real loop on the README
question is in tests/chat/test_loops_real.py); legitimate text is real legal text from
the shared corpus, which must never be cut."""

from __future__ import annotations

from pathlib import Path

import pytest

from legal_assistant.chat.degeneration import Degeneration, LoopLimits, LoopWatcher

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"
if not CORPUS.is_dir():  # the work tree may sit elsewhere: /work/shared is the source
    CORPUS = Path("/work/shared/corpus")

INTRO = "Un contrat de bail est un accord entre un bailleur et un locataire. "
SENTENCE = "Le bail est un contrat par lequel le bailleur loue un bien au locataire. "


def feed_in_pieces(watcher: LoopWatcher, text: str, size: int = 3) -> Degeneration | None:
    """Feed `text` in small deltas, as tokens arrive; stop at the first detection."""
    for i in range(0, len(text), size):
        found = watcher.feed(text[i : i + size])
        if found is not None:
            return found
    return watcher.finish()


def test_a_repeated_sentence_is_cut_after_its_first_copy() -> None:
    watcher = LoopWatcher()
    found = feed_in_pieces(watcher, INTRO + SENTENCE * 20)
    assert found is not None and found.kind == "repetition"
    assert found.unit_words == len(SENTENCE.split())
    assert watcher.kept_text() == (INTRO + SENTENCE).rstrip()
    # Detected within the third copy, not after the twentieth.
    assert len(watcher.text) <= len(INTRO) + 3 * len(SENTENCE)


def test_a_long_sentence_repeated_twice_is_enough() -> None:
    long = (
        "Selon l'article 1709 du Code civil, le louage des choses est un contrat par "
        "lequel l'une des parties s'oblige à faire jouir l'autre d'une chose pendant un "
        "certain temps, et moyennant un certain prix. "
    )
    watcher = LoopWatcher()
    found = feed_in_pieces(watcher, INTRO + long * 5)
    assert found is not None and found.kind == "repetition"
    assert len(watcher.text) <= len(INTRO) + 2 * len(long) + 5
    assert watcher.kept_text() == (INTRO + long).rstrip()


def test_a_short_word_loop_and_a_loop_without_spaces_are_cut() -> None:
    words = LoopWatcher()
    assert feed_in_pieces(words, "Oui. " + "bail " * 200) is not None
    assert words.kept_text() == "Oui. bail"
    dashes = LoopWatcher()
    found = feed_in_pieces(dashes, "Voici : " + "=" * 5000, size=7)
    assert found is not None
    assert dashes.kept_text().startswith("Voici :") and len(dashes.kept_text()) < 80
    assert len(dashes.text) < 2000  # found early, not at the end


def test_whitespace_and_case_do_not_hide_a_loop() -> None:
    variants = [SENTENCE, SENTENCE.upper(), SENTENCE.replace(" ", "  "), SENTENCE + "\n"]
    watcher = LoopWatcher()
    assert feed_in_pieces(watcher, INTRO + "".join(variants * 3)) is not None


def test_a_near_loop_is_cut_by_the_diversity_check() -> None:
    # Each copy differs by one word (a number), so no exact repetition: the trigram
    # diversity collapses instead.
    text = INTRO + "".join(
        f"Le locataire doit payer le loyer convenu chaque mois au bailleur, soit {n} euros. "
        for n in range(100, 160)
    )
    watcher = LoopWatcher()
    found = feed_in_pieces(watcher, text)
    assert found is not None and found.kind == "low_diversity"
    kept = watcher.kept_text()
    assert kept.startswith(INTRO.strip()) and kept.endswith(".")
    assert len(kept) < len(watcher.text)


def test_a_watcher_stays_stopped_and_ignores_empty_deltas() -> None:
    watcher = LoopWatcher()
    assert watcher.feed("") is None
    found = feed_in_pieces(watcher, SENTENCE * 5)
    assert found is not None
    assert watcher.feed("Encore du texte ") is found
    assert "Encore" not in watcher.text


def test_limits_are_configurable() -> None:
    strict = LoopWatcher(LoopLimits(min_repeats=2, min_span_words=4))
    assert feed_in_pieces(strict, "Bonjour. Oui oui. Oui oui. Fin") is not None
    lenient = LoopWatcher(LoopLimits(min_repeats=50, long_unit_words=1000, min_distinct=0))
    assert feed_in_pieces(lenient, SENTENCE * 10) is None


@pytest.mark.parametrize(
    "text",
    [
        # Enumerations whose items share most words.
        "".join(
            f"{n}. Le bailleur doit délivrer le logement n° {n} en bon état. " for n in range(40)
        ),
        # A Markdown table.
        "| Article | Objet |\n| --- | --- |\n"
        + "".join(f"| {1700 + n} | louage, bail n° {n} |\n" for n in range(40)),
        # "très, très" and a repeated word or two are not loops.
        "C'est très, très important : le bail, le bail écrit, doit être signé. " * 1,
    ],
)
def test_legitimate_structured_text_is_not_cut(text: str) -> None:
    watcher = LoopWatcher()
    assert feed_in_pieces(watcher, text) is None
    assert watcher.kept_text() == text


def test_real_legal_text_is_never_cut() -> None:
    """The Code civil and the Cour de cassation's decisions (long party lists, repeated
    formulas): no false positive on any of them, fed as a stream would feed them."""
    files = sorted((CORPUS / "judgments").glob("*.txt"))
    civil = sorted((CORPUS / "code-civil").rglob("*.md"))
    assert len(files) >= 40 and len(civil) >= 1000
    # The Code civil's articles one after the other, as a long answer quoting them would.
    chunks = ["".join(p.read_text() for p in civil[i : i + 40]) for i in range(0, 1200, 40)]
    for text in [p.read_text() for p in files] + chunks:
        watcher = LoopWatcher()
        found = feed_in_pieces(watcher, text, size=5)
        assert found is None, (found, watcher.text[-300:])
