-- Audit trail: append-only, hash-chained per tenant (HMAC under a key the database never holds).
CREATE TABLE audit_events (
    tenant_id       TEXT NOT NULL REFERENCES tenants (id),
    seq             INTEGER NOT NULL,
    occurred_at     INTEGER NOT NULL,
    actor           TEXT NOT NULL,
    actor_role      TEXT,
    action          TEXT NOT NULL,
    target          TEXT,
    scope           TEXT NOT NULL,
    client_addr     TEXT,
    request_id      TEXT,
    prev_hash       BLOB NOT NULL,
    entry_hash      BLOB NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);
CREATE INDEX audit_events_action ON audit_events (tenant_id, action, occurred_at);

-- The newest link of each tenant's chain; appends lock and advance it.
CREATE TABLE audit_heads (
    tenant_id   TEXT PRIMARY KEY REFERENCES tenants (id),
    seq         INTEGER NOT NULL,
    entry_hash  BLOB NOT NULL
);

-- Opaque ids of all tenants (no names, no data), for operator jobs that walk every tenant.
CREATE TABLE tenant_index (
    id          TEXT PRIMARY KEY,
    created_at  INTEGER NOT NULL
);
INSERT INTO tenant_index (id, created_at) SELECT id, created_at FROM tenants;

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
