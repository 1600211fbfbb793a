"""Schema of the accounts tables (applied with the rest by `store.Database`).

* `user`: username (unique, lower-case), the Argon2id hash, role, disabled.
* `session`: keyed by the SHA-256 of the cookie's token (a copy of the database does not
  hold usable cookies); its CSRF token; `last_seen` for the idle expiry.
* `api_key`: keyed by its id (the first half of the key), the SHA-256 of its secret half,
  scopes, model allowlist, expiry, daily token quota; `key_usage` counts tokens per key and
  per UTC day.
* `audit`: append-only — a table event refuses any UPDATE or DELETE, so even a bug in
  this code cannot rewrite history through SurrealQL.
* Ownership: `owner_id` on dossiers and conversations (absent = the single-user data dir
  before accounts: adopted by the first admin, accounts/migration.py), and
  `dossier_member` (dossier_id, user_id, role editor|reader).
"""

from __future__ import annotations

ACCOUNTS_SCHEMA: tuple[str, ...] = (
    "DEFINE TABLE IF NOT EXISTS user SCHEMAFULL",
    "DEFINE FIELD IF NOT EXISTS username ON user TYPE string",
    "DEFINE FIELD IF NOT EXISTS password_hash ON user TYPE string",
    "DEFINE FIELD IF NOT EXISTS role ON user TYPE string ASSERT $value IN ['admin', 'member']",
    "DEFINE FIELD IF NOT EXISTS disabled ON user TYPE bool DEFAULT false",
    "DEFINE FIELD IF NOT EXISTS created_at ON user TYPE datetime",
    "DEFINE INDEX IF NOT EXISTS user_username ON user FIELDS username UNIQUE",
    "DEFINE TABLE IF NOT EXISTS session SCHEMAFULL",
    "DEFINE FIELD IF NOT EXISTS user_id ON session TYPE string",
    "DEFINE FIELD IF NOT EXISTS csrf_token ON session TYPE string",
    "DEFINE FIELD IF NOT EXISTS created_at ON session TYPE datetime",
    "DEFINE FIELD IF NOT EXISTS last_seen ON session TYPE datetime",
    "DEFINE INDEX IF NOT EXISTS session_user ON session FIELDS user_id",
    "DEFINE TABLE IF NOT EXISTS api_key SCHEMAFULL",
    "DEFINE FIELD IF NOT EXISTS user_id ON api_key TYPE string",
    "DEFINE FIELD IF NOT EXISTS name ON api_key TYPE string",
    "DEFINE FIELD IF NOT EXISTS secret_hash ON api_key TYPE string",
    "DEFINE FIELD IF NOT EXISTS scopes ON api_key TYPE array<string>",
    "DEFINE FIELD IF NOT EXISTS models ON api_key TYPE option<array<string>>",
    "DEFINE FIELD IF NOT EXISTS expires_at ON api_key TYPE option<datetime>",
    "DEFINE FIELD IF NOT EXISTS daily_tokens ON api_key TYPE option<int>",
    "DEFINE FIELD IF NOT EXISTS created_at ON api_key TYPE datetime",
    "DEFINE FIELD IF NOT EXISTS last_used_at ON api_key TYPE option<datetime>",
    "DEFINE INDEX IF NOT EXISTS api_key_user ON api_key FIELDS user_id",
    "DEFINE TABLE IF NOT EXISTS key_usage SCHEMAFULL",
    "DEFINE FIELD IF NOT EXISTS key_id ON key_usage TYPE string",
    "DEFINE FIELD IF NOT EXISTS day ON key_usage TYPE string",
    "DEFINE FIELD IF NOT EXISTS tokens ON key_usage TYPE int DEFAULT 0",
    "DEFINE FIELD IF NOT EXISTS requests ON key_usage TYPE int DEFAULT 0",
    "DEFINE INDEX IF NOT EXISTS key_usage_key ON key_usage FIELDS key_id, day",
    "DEFINE TABLE IF NOT EXISTS audit SCHEMAFULL",
    "DEFINE FIELD IF NOT EXISTS at ON audit TYPE datetime",
    "DEFINE FIELD IF NOT EXISTS user ON audit TYPE string",
    "DEFINE FIELD IF NOT EXISTS action ON audit TYPE string",
    "DEFINE FIELD IF NOT EXISTS resource ON audit TYPE string",
    "DEFINE FIELD IF NOT EXISTS outcome ON audit TYPE string"
    " ASSERT $value IN ['ok', 'denied', 'failed']",
    "DEFINE FIELD IF NOT EXISTS address ON audit TYPE option<string>",
    "DEFINE INDEX IF NOT EXISTS audit_at ON audit FIELDS at",
    "DEFINE INDEX IF NOT EXISTS audit_user ON audit FIELDS user, at",
    "DEFINE EVENT IF NOT EXISTS audit_append_only ON TABLE audit"
    ' WHEN $event != "CREATE" THEN { THROW "the audit log is append-only" }',
    "DEFINE FIELD IF NOT EXISTS owner_id ON dossier TYPE option<string>",
    "DEFINE INDEX IF NOT EXISTS dossier_owner ON dossier FIELDS owner_id",
    "DEFINE FIELD IF NOT EXISTS owner_id ON conversation TYPE option<string>",
    "DEFINE INDEX IF NOT EXISTS conversation_owner ON conversation FIELDS owner_id",
    "DEFINE TABLE IF NOT EXISTS dossier_member SCHEMAFULL",
    "DEFINE FIELD IF NOT EXISTS dossier_id ON dossier_member TYPE string",
    "DEFINE FIELD IF NOT EXISTS user_id ON dossier_member TYPE string",
    "DEFINE FIELD IF NOT EXISTS role ON dossier_member TYPE string"
    " ASSERT $value IN ['editor', 'reader']",
    "DEFINE INDEX IF NOT EXISTS dossier_member_pair ON dossier_member"
    " FIELDS dossier_id, user_id UNIQUE",
    "DEFINE INDEX IF NOT EXISTS dossier_member_user ON dossier_member FIELDS user_id",
)
