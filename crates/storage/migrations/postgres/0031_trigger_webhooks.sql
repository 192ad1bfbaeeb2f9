-- An external practice system that receives Insight's triggers as signed webhooks: its URL and
-- the signing secret (sealed with the tenant's data key), and the deliveries, retried with
-- backoff and idempotent by trigger id.
CREATE TABLE trigger_endpoints (
    tenant_id       TEXT NOT NULL REFERENCES tenants (id),
    url             TEXT NOT NULL,
    secret_ct       BYTEA NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (tenant_id)
);
CREATE TABLE trigger_webhooks (
    tenant_id       TEXT NOT NULL REFERENCES tenants (id),
    trigger_id      TEXT NOT NULL,
    body            TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    last_result     TEXT,
    created_at      BIGINT NOT NULL,
    delivered_at    BIGINT,
    PRIMARY KEY (tenant_id, trigger_id)
);
CREATE INDEX trigger_webhooks_due ON trigger_webhooks (tenant_id, status, next_attempt_at);
CREATE TRIGGER trigger_endpoints_tenant_immutable BEFORE UPDATE ON trigger_endpoints
    FOR EACH ROW EXECUTE FUNCTION lacuna_tenant_immutable();
ALTER TABLE trigger_endpoints ENABLE ROW LEVEL SECURITY;
ALTER TABLE trigger_endpoints FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON trigger_endpoints
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
CREATE TRIGGER trigger_webhooks_tenant_immutable BEFORE UPDATE ON trigger_webhooks
    FOR EACH ROW EXECUTE FUNCTION lacuna_tenant_immutable();
ALTER TABLE trigger_webhooks ENABLE ROW LEVEL SECURITY;
ALTER TABLE trigger_webhooks FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON trigger_webhooks
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
