"""`python -m legal_assistant.cli`."""

from legal_assistant.cli.main import app

app()
