"""Tools on the REAL `mlx_lm.server`: the bundled model given a chat template with a
tool-call format (Qwen 2.5's `<tool_call>` convention, which mlx-lm 0.32 recognises and
parses) becomes a model that may call tools — listed so by Ollama `show` — and the engine
really receives the tools: its own token count of the prompt grows by their rendering.
(The 135M model is not trained to call tools; what it answers is not checked beyond
being a well-formed Anthropic message.)"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anthropic
import ollama

from legal_assistant.config import Settings
from legal_assistant.runtime import blas
from legal_assistant.runtime.bundled import ensure_bundled_model

TOOL_TEMPLATE = (
    "{%- if tools %}<|im_start|>system\nYou may call these tools:\n"
    "{%- for tool in tools %}\n{{ tool | tojson }}{%- endfor %}\n"
    'Call one as <tool_call>{"name": ..., "arguments": ...}</tool_call><|im_end|>\n'
    "{%- endif %}"
    "{%- for message in messages %}<|im_start|>{{ message.role }}\n"
    "{%- if message.tool_calls %}{%- for tool_call in message.tool_calls %}"
    "{%- if tool_call.function is defined %}{%- set tool_call = tool_call.function %}"
    '{%- endif %}<tool_call>{"name": "{{ tool_call.name }}"}</tool_call>{%- endfor %}'
    "{%- else %}{{ message.content }}{%- endif %}<|im_end|>\n{%- endfor %}"
    "{%- if add_generation_prompt %}<|im_start|>assistant\n{%- endif %}"
)
TOOLS: list[Any] = [
    {
        "name": "chercher_article",
        "description": "Cherche un article du Code civil par son numéro",
        "input_schema": {"type": "object", "properties": {"numéro": {"type": "string"}}},
    }
]
ASK = [{"role": "user", "content": "Que dit l'article 1103 ?"}]


async def test_real_mlx_engine_receives_the_tools(
    serve_gateway: Callable[..., Any],
    gw_real_settings: Callable[..., Settings],
    bundled_model: Path,
    models_dir: Path,
    tmp_path: Path,
) -> None:
    # The variant the alias runs here (float32 with a fast BLAS): its weights linked, its
    # tokenizer config rewritten.
    source = ensure_bundled_model(models_dir, blas.choose().variant)
    target = tmp_path / "smollm2-tools"
    target.mkdir()
    for f in source.iterdir():
        (target / f.name).symlink_to(f)
    config_path = target / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["chat_template"] = TOOL_TEMPLATE
    config_path.unlink()
    config_path.write_text(json.dumps(config))
    model = f"mlx:{target}"
    async with serve_gateway(gw_real_settings()) as gw:
        shown = await ollama.AsyncClient(host=f"{gw.url}/ollama", trust_env=False).show(model)
        assert "tools" in (shown.capabilities or [])
        assert shown.modelinfo is not None and shown.modelinfo["llama.context_length"] == 8192
        claude = anthropic.AsyncAnthropic(
            base_url=gw.url,
            api_key="unused",
            max_retries=0,
            http_client=anthropic.DefaultAsyncHttpxClient(trust_env=False, timeout=180),
        )
        try:
            plain = await claude.messages.count_tokens(model=model, messages=ASK)  # type: ignore[arg-type]
            tooled = await claude.messages.count_tokens(model=model, messages=ASK, tools=TOOLS)
            # The tool's JSON, rendered by mlx_lm.server's own template: dozens of tokens.
            assert tooled.input_tokens > plain.input_tokens + 30, (plain, tooled)
            answer = await claude.messages.create(
                model=model,
                max_tokens=2,
                messages=ASK,
                tools=TOOLS,  # type: ignore[arg-type]
            )
        finally:
            await claude.close()
        assert answer.stop_reason in ("end_turn", "max_tokens", "tool_use")
        assert answer.usage.input_tokens == tooled.input_tokens
