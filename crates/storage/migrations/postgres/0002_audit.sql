-- Audit trail: append-only, hash-chained per tenant (HMAC under a key the database never holds).
CREATE TABLE audit_events (
    tenant_id       TEXT NOT NULL REFERENCES tenants (id),
    seq             BIGINT NOT NULL,
    occurred_at     BIGINT NOT NULL,
    actor           TEXT NOT NULL,
    actor_role      TEXT,
    action          TEXT NOT NULL,
    target          TEXT,
    scope           TEXT NOT NULL,
    client_addr     TEXT,
    request_id      TEXT,
    prev_hash       BYTEA NOT NULL,
    entry_hash      BYTEA NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);
CREATE INDEX audit_events_action ON audit_events (tenant_id, action, occurred_at);

CREATE TABLE audit_heads (
    tenant_id   TEXT PRIMARY KEY REFERENCES tenants (id),
    seq         BIGINT NOT NULL,
    entry_hash  BYTEA NOT NULL
);

-- Opaque ids of all tenants (no names, no data), for operator jobs that walk every tenant.
-- Deliberately without row-level security; it holds nothing but random ids.
CREATE TABLE tenant_index (
    id          TEXT PRIMARY KEY,
    created_at  BIGINT NOT NULL
);
INSERT INTO tenant_index (id, created_at) SELECT id, created_at FROM tenants;

CREATE FUNCTION lacuna_audit_append_only() RETURNS trigger LANGUAGE plpgsql SET search_path = '' AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only';
END $$;
CREATE TRIGGER audit_events_no_update BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION lacuna_audit_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION lacuna_audit_append_only();

ALTER TABLE audit_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_events FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_events
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

ALTER TABLE audit_heads ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_heads FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_heads
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
