"""Legal Assistant: privacy-first legal chat with a local model runtime supervisor."""
