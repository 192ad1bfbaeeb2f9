-- Foundation: tenants, staff identities, members, sessions, API tokens. (Keys live in the
-- separate keystore, never in this database.)
-- Every tenant-owned table leads with tenant_id in its primary key; references are composite
-- (tenant_id, x) so a row can never point into another tenant.

CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

-- Login identities. Global so that sign-in by email works; each belongs to one tenant.
CREATE TABLE users (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants (id),
    email           TEXT NOT NULL UNIQUE,
    password_hash   TEXT,
    created_at      INTEGER NOT NULL,
    UNIQUE (tenant_id, id)
);

CREATE TABLE members (
    tenant_id           TEXT NOT NULL,
    user_id             TEXT NOT NULL,
    name                TEXT NOT NULL,
    role                TEXT NOT NULL CHECK (role IN ('owner', 'manager', 'provider', 'front_desk')),
    permissions         TEXT,
    invite_hash         BLOB,
    invite_expires_at   INTEGER,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, user_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX members_invite ON members (tenant_id, invite_hash);

CREATE TABLE sessions (
    tenant_id       TEXT NOT NULL,
    token_hash      BLOB NOT NULL,
    user_id         TEXT NOT NULL,
    csrf_token      TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    last_seen_at    INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    revoked_at      INTEGER,
    PRIMARY KEY (tenant_id, token_hash),
    FOREIGN KEY (tenant_id, user_id) REFERENCES members (tenant_id, user_id) ON DELETE CASCADE
);
CREATE INDEX sessions_user ON sessions (tenant_id, user_id);

CREATE TABLE api_tokens (
    tenant_id       TEXT NOT NULL,
    id              TEXT NOT NULL,
    name            TEXT NOT NULL,
    token_hash      BLOB NOT NULL,
    permissions     TEXT NOT NULL,
    created_by      TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    last_used_at    INTEGER,
    revoked_at      INTEGER,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, token_hash),
    FOREIGN KEY (tenant_id) REFERENCES tenants (id)
);

-- tenant_id never changes once written.
CREATE TRIGGER members_tenant_immutable BEFORE UPDATE OF tenant_id ON members
BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable'); END;
CREATE TRIGGER sessions_tenant_immutable BEFORE UPDATE OF tenant_id ON sessions
BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable'); END;
CREATE TRIGGER api_tokens_tenant_immutable BEFORE UPDATE OF tenant_id ON api_tokens
BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable'); END;
CREATE TRIGGER users_tenant_immutable BEFORE UPDATE OF tenant_id ON users
BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable'); END;
