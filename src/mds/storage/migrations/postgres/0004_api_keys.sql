-- API keys (issue 12), PostgreSQL: the same table as migrations/sqlite/0004_api_keys.sql.
-- Only the SHA-256 of a key is stored (keys are 256-bit random tokens); a name is unique
-- among active keys only; a revoked key keeps its row.
CREATE TABLE api_keys (
    id         bigserial   PRIMARY KEY,
    name       text        NOT NULL,
    role       text        NOT NULL CHECK (role IN ('read', 'ops', 'admin')),
    key_hash   text        NOT NULL UNIQUE,
    key_prefix text        NOT NULL,
    created_at timestamptz NOT NULL,
    revoked_at timestamptz
);
CREATE UNIQUE INDEX api_keys_active_name ON api_keys (name) WHERE revoked_at IS NULL;
