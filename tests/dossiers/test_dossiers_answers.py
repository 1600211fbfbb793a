"""A useful answer when the model fails (issue 20): a grounded answer with no supported
citation gets the dossier's best passages quoted after it (`extract` event,
`done.fallback`), a loop in a dossier is cut, and all of it is saved with the message and
comes back after a restart.

Real app, SurrealDB, extraction worker and embedding engine; a scripted OpenAI-compatible
endpoint (tests/fakes/scripted_endpoint.py) stands in for a model that answers exactly
without citations, with one, or in a loop (the bundled model does all three, but not on
demand)."""

from __future__ import annotations

from pathlib import Path

from dossier_builders import article, planted_pdf
from dossier_helpers import create_dossier, upload, wait_documents

from app_harness import load_fake, make_settings, serve_app
from legal_assistant.chat.extract import INTRO, quote
from legal_assistant.config import OpenAIEndpoint

scripted = load_fake("scripted_endpoint")
QUESTION = "Que doit faire celui par la faute duquel un dommage est causé à autrui ?"
SCRIPTS = {
    "uncited": scripted.Script("Il doit réparer le dommage causé, en principe."),
    # Article 1382 quoted, with its citation: the claim checker finds it supported.
    "citing": scripted.Script(
        "Tout fait quelconque de l'homme, qui cause à autrui un dommage, oblige celui par "
        "la faute duquel il est arrivé à le réparer [1]."
    ),
    "looping": scripted.Script("The author must pay. It is the rule.", loop=True),
}


async def test_uncited_and_looping_answers_get_the_passages_quoted_and_keep_them(
    tmp_path: Path, models_dir: Path
) -> None:
    async with scripted.scripted_endpoint(SCRIPTS) as endpoint:
        remote = OpenAIEndpoint(name="s", base_url=endpoint.url, models=list(SCRIPTS))
        settings = make_settings(tmp_path, models_dir, openai_endpoints=[remote])
        async with serve_app(settings) as app:
            dossier = await create_dossier(app)
            pdf = planted_pdf(tmp_path / "responsabilite.pdf", "1382", page=2, pages=3)
            await upload(app.client, dossier["id"], pdf)
            await wait_documents(app, dossier["id"])

            async def ask(model: str, language: str = "fr") -> object:
                return await app.chat(
                    message=QUESTION,
                    dossier_id=dossier["id"],
                    model_id=f"openai:{model}",
                    language=language,
                )

            uncited, citing, looping = (
                await ask("uncited"),
                await ask("citing"),
                await ask("looping", "en"),
            )

            # No citation: the extract comes after the model's tokens, before done.
            names = uncited.names
            assert names.index("extract") > max(i for i, n in enumerate(names) if n == "token")
            assert names[-1] == "done" and names.count("extract") == 1
            extract = uncited.one("extract")
            sources = uncited.one("sources")["sources"]
            assert extract["sources"] == [s["n"] for s in sources[:3]]
            assert extract["text"].startswith(INTRO["fr"])
            first = sources[0]
            assert first["filename"] == "responsabilite.pdf" and first["page"] == 2
            assert "**responsabilite.pdf, p. 2" in extract["text"]
            assert quote(first["text"], QUESTION) in extract["text"]
            assert "réparer" in article("1382") and "réparer" in extract["text"]
            done = uncited.one("done")
            assert done["fallback"] == "extractive" and done["citations"] == []
            assert "stopped" not in done

            # A supported citation: the model's answer stands alone.
            assert "extract" not in citing.names
            assert "fallback" not in citing.one("done")
            assert citing.one("done")["citations"] == [1]

            # A loop in a dossier: cut, then the passages (in English).
            done_loop = looping.one("done")
            assert done_loop["stopped"] == "repetition"
            assert done_loop["fallback"] == "extractive"
            assert looping.one("extract")["text"].startswith(INTRO["en"])
            conversations = [t.conversation_id for t in (uncited, citing, looping)]

        # After a restart, the saved messages say the same.
        async with serve_app(settings) as app:
            saved = [(await app.conversation(c))["messages"][-1] for c in conversations]
    assert saved[0]["extract"] == extract and saved[0]["fallback"] == "extractive"
    assert saved[0]["content"] == uncited.text and saved[0]["stopped"] is None
    assert saved[1]["extract"] is None and saved[1]["fallback"] is None
    assert saved[1]["claims"] == citing.one("done")["claims"]  # the checker's verdicts
    assert saved[0]["claims"] == uncited.one("done")["claims"]
    assert saved[2]["stopped"] == "repetition" and saved[2]["fallback"] == "extractive"
    assert saved[2]["extract"] == looping.one("extract")
    assert saved[2]["content"] == "The author must pay. It is the rule."
