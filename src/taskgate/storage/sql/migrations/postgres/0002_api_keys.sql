-- taskgate schema 2: API keys, and the numeric id of the user who submitted a task.
-- A key is tgk_<id>_<secret>: only its id and a salted scrypt hash of its secret are
-- stored, never the secret.

ALTER TABLE tasks ADD COLUMN user_id BIGINT;

CREATE TABLE api_keys (
    id          TEXT COLLATE "C" PRIMARY KEY,       -- 12 lowercase hex chars, public
    tenant      TEXT NOT NULL,
    user_name   TEXT NOT NULL,
    user_id     BIGINT,
    role        TEXT NOT NULL,                      -- read, write or admin
    secret_hash TEXT NOT NULL,                      -- scrypt$<n>$<r>$<p>$<salt>$<hash>
    description TEXT,
    created_at  DOUBLE PRECISION NOT NULL,
    expires_at  DOUBLE PRECISION,
    revoked_at  DOUBLE PRECISION
);

CREATE INDEX api_keys_tenant ON api_keys (tenant, created_at);
