"""Clients for model servers that are already running: the MLX engine and remote
OpenAI-compatible servers (`OpenAICompatProvider`), and a local Ollama daemon
(`OllamaProvider`). Starting and supervising engines is the runtime's job, not theirs.
"""

from __future__ import annotations

from legal_assistant.providers.base import ChatProvider, Finish, StreamItem, TokenDelta, Usage
from legal_assistant.providers.ollama import OllamaModelInfo, OllamaProvider
from legal_assistant.providers.openai_compat import OpenAICompatProvider

__all__ = [
    "ChatProvider",
    "Finish",
    "OllamaModelInfo",
    "OllamaProvider",
    "OpenAICompatProvider",
    "StreamItem",
    "TokenDelta",
    "Usage",
]
