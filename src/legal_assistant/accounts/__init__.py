"""Accounts: users, server-side sessions, scoped API keys, the audit log, and the one
access policy every dossier, document, conversation and brief route depends on."""
