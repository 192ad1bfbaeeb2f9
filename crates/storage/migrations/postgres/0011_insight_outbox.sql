-- Pseudonymous events for Insight, written in the same transaction as the Practice change they
-- describe, delivered to Insight's own store by a job (through the PHI guard), then marked.
CREATE TABLE insight_outbox (
    tenant_id       TEXT NOT NULL REFERENCES tenants (id),
    id              TEXT NOT NULL,
    body            TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    delivered_at    BIGINT,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX insight_outbox_pending ON insight_outbox (tenant_id, delivered_at, created_at);
CREATE TRIGGER insight_outbox_tenant_immutable BEFORE UPDATE ON insight_outbox
    FOR EACH ROW EXECUTE FUNCTION lacuna_tenant_immutable();
ALTER TABLE insight_outbox ENABLE ROW LEVEL SECURITY;
ALTER TABLE insight_outbox FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON insight_outbox
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
