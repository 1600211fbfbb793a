"""`legal-assistant`, the command line: one module per command group.

main (serve, ask, the app), engines, dossiers, models (catalog and cache), doctor; shared
helpers in common (settings, consoles, errors) and render (status lines, bars, answers).
Kept empty so that command modules can import `legal_assistant.cli.common` without
pulling in every command.
"""
