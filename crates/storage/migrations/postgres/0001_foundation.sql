-- Foundation: tenants, staff identities, members, sessions, API tokens. (Keys live in the
-- separate keystore, never in this database.)
-- Kept column-for-column in step with migrations/sqlite (a test compares them).
-- Every tenant-owned table: tenant_id first in the key, composite references, and
-- ENABLE + FORCE row-level security against current_setting('app.tenant_id', true), which the
-- storage layer sets transaction-locally. With no tenant set, a query sees zero rows.

CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE users (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants (id),
    email           TEXT NOT NULL UNIQUE,
    password_hash   TEXT,
    created_at      BIGINT NOT NULL,
    UNIQUE (tenant_id, id)
);

CREATE TABLE members (
    tenant_id           TEXT NOT NULL,
    user_id             TEXT NOT NULL,
    name                TEXT NOT NULL,
    role                TEXT NOT NULL CHECK (role IN ('owner', 'manager', 'provider', 'front_desk')),
    permissions         TEXT,
    invite_hash         BYTEA,
    invite_expires_at   BIGINT,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, user_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX members_invite ON members (tenant_id, invite_hash);

CREATE TABLE sessions (
    tenant_id       TEXT NOT NULL,
    token_hash      BYTEA NOT NULL,
    user_id         TEXT NOT NULL,
    csrf_token      TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    last_seen_at    BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    revoked_at      BIGINT,
    PRIMARY KEY (tenant_id, token_hash),
    FOREIGN KEY (tenant_id, user_id) REFERENCES members (tenant_id, user_id) ON DELETE CASCADE
);
CREATE INDEX sessions_user ON sessions (tenant_id, user_id);

CREATE TABLE api_tokens (
    tenant_id       TEXT NOT NULL,
    id              TEXT NOT NULL,
    name            TEXT NOT NULL,
    token_hash      BYTEA NOT NULL,
    permissions     TEXT NOT NULL,
    created_by      TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    last_used_at    BIGINT,
    revoked_at      BIGINT,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, token_hash),
    FOREIGN KEY (tenant_id) REFERENCES tenants (id)
);

CREATE FUNCTION lacuna_tenant_immutable() RETURNS trigger LANGUAGE plpgsql SET search_path = '' AS $$
BEGIN
    IF NEW.tenant_id IS DISTINCT FROM OLD.tenant_id THEN
        RAISE EXCEPTION 'tenant_id is immutable';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER members_tenant_immutable BEFORE UPDATE ON members
    FOR EACH ROW EXECUTE FUNCTION lacuna_tenant_immutable();
CREATE TRIGGER sessions_tenant_immutable BEFORE UPDATE ON sessions
    FOR EACH ROW EXECUTE FUNCTION lacuna_tenant_immutable();
CREATE TRIGGER api_tokens_tenant_immutable BEFORE UPDATE ON api_tokens
    FOR EACH ROW EXECUTE FUNCTION lacuna_tenant_immutable();
CREATE TRIGGER users_tenant_immutable BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION lacuna_tenant_immutable();

-- Row-level security: the second wall under the tenant-scoped handle.
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenants
    USING (id = current_setting('app.tenant_id', true))
    WITH CHECK (id = current_setting('app.tenant_id', true));

-- A login identity is visible inside its own tenant, or, for the one sign-in transaction that
-- sets app.login_email, the single row with that email.
ALTER TABLE users ENABLE ROW LEVEL SECURITY;
ALTER TABLE users FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON users
    USING (tenant_id = current_setting('app.tenant_id', true)
           OR email = current_setting('app.login_email', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

ALTER TABLE members ENABLE ROW LEVEL SECURITY;
ALTER TABLE members FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON members
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

ALTER TABLE sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE sessions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON sessions
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

ALTER TABLE api_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON api_tokens
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
