-- API keys (issue 12), SQLite. Only the SHA-256 of a key is stored: keys are 256-bit
-- random tokens, so a fast hash leaves nothing to brute-force and a lookup is one index
-- probe per request (cached by the authenticator). created_at and revoked_at are epoch
-- MICROseconds UTC. A revoked key keeps its row (who had access, until when); a name is
-- unique among active keys only, so `revoke NAME` then `create --name NAME` rotates it.
CREATE TABLE api_keys (
    id         INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL,
    role       TEXT    NOT NULL CHECK (role IN ('read', 'ops', 'admin')),
    key_hash   TEXT    NOT NULL UNIQUE,
    key_prefix TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE UNIQUE INDEX api_keys_active_name ON api_keys (name) WHERE revoked_at IS NULL;
