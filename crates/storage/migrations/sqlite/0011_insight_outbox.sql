-- Pseudonymous events for Insight, written in the same transaction as the Practice change they
-- describe, delivered to Insight's own store by a job (through the PHI guard), then marked.
CREATE TABLE insight_outbox (
    tenant_id       TEXT NOT NULL REFERENCES tenants (id),
    id              TEXT NOT NULL,
    body            TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    delivered_at    INTEGER,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX insight_outbox_pending ON insight_outbox (tenant_id, delivered_at, created_at);
CREATE TRIGGER insight_outbox_tenant_immutable BEFORE UPDATE OF tenant_id ON insight_outbox
BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable'); END;
