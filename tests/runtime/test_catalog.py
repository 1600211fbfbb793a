"""Model ids are validated once, in `parse_model_id`, before anything reaches a command
line: accepted forms parse to a ModelRef, everything else is refused with a stable code
and a message that says what is wrong."""

from __future__ import annotations

import pytest

from legal_assistant.catalog import ModelRef, parse_model_id
from legal_assistant.errors import LegalAssistantError


@pytest.mark.parametrize(
    ("model_id", "provider", "name", "kind"),
    [
        ("mlx:smollm2-135m", "mlx", "smollm2-135m", "alias"),
        ("mlx:org/repo", "mlx", "org/repo", "repo"),
        (
            "mlx:mlx-community/Qwen2.5-3B-Instruct-4bit",
            "mlx",
            "mlx-community/Qwen2.5-3B-Instruct-4bit",
            "repo",
        ),
        ("mlx:/abs/path", "mlx", "/abs/path", "path"),
        ("ollama:qwen2.5:7b", "ollama", "qwen2.5:7b", "name"),
        ("openai:gpt-4o-mini", "openai", "gpt-4o-mini", "name"),
    ],
)
def test_accepts(model_id: str, provider: str, name: str, kind: str) -> None:
    ref = parse_model_id(model_id)
    assert ref == ModelRef(provider, name)  # type: ignore[arg-type]
    assert ref.id == model_id
    assert str(ref) == model_id
    assert ref.kind == kind
    assert ref.managed is (provider == "mlx")


@pytest.mark.parametrize(
    ("model_id", "code", "why"),
    [
        ("", "invalid_model_id", "empty"),
        ("   ", "invalid_model_id", "empty"),
        ("mlx:", "invalid_model_id", "empty"),
        ("smollm2-135m", "invalid_model_id", "provider:name"),
        ("foo:bar", "unknown_provider", "foo"),
        ("mlx:--port 1", "invalid_model_id", "'-'"),
        ("mlx:../../etc", "invalid_model_id", "alias, org/repo or an absolute path"),
        ("mlx:/tmp/../etc", "invalid_model_id", "'..'"),
        ("mlx:/", "invalid_model_id", "root"),
        ("mlx:a b", "invalid_model_id", "alias, org/repo or an absolute path"),
        ("mlx:a\x00b", "invalid_model_id", "control characters"),
        ("mlx:a\nb", "invalid_model_id", "control characters"),
        ("mlx:" + "a" * 10000, "invalid_model_id", "longer than"),
        ("ollama:../x", "invalid_model_id", "Ollama"),
    ],
    ids=repr,
)
def test_refuses(model_id: str, code: str, why: str) -> None:
    with pytest.raises(LegalAssistantError) as info:
        parse_model_id(model_id)
    err = info.value
    assert err.code == code
    assert err.http_status == 400
    for language in ("fr", "en"):
        message = err.message(language)
        assert message.startswith("❌ ")
        assert why in message or why in err.detail
        # Messages are for humans: short, printable, never the raw 10 kB input.
        assert len(message) < 200
        assert message.isprintable()
    assert len(err.detail) < 200
    assert err.detail.isprintable()
    assert err.to_dict("en")["code"] == code


def test_unknown_provider_lists_known_ones() -> None:
    with pytest.raises(LegalAssistantError) as info:
        parse_model_id("foo:bar")
    for provider in ("mlx", "ollama", "openai"):
        assert provider in info.value.message("en")
        assert provider in info.value.message("fr")


def test_non_string_is_refused() -> None:
    with pytest.raises(LegalAssistantError) as info:
        parse_model_id(None)  # type: ignore[arg-type]
    assert info.value.code == "invalid_model_id"
