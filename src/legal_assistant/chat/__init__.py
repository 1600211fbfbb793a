"""One chat turn: validate, persist, ensure the engine, stream, persist."""
