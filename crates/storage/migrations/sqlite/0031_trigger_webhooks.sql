-- An external practice system that receives Insight's triggers as signed webhooks: its URL and
-- the signing secret (sealed with the tenant's data key), and the deliveries, retried with
-- backoff and idempotent by trigger id.
CREATE TABLE trigger_endpoints (
    tenant_id       TEXT NOT NULL REFERENCES tenants (id),
    url             TEXT NOT NULL,
    secret_ct       BLOB NOT NULL,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (tenant_id)
);
CREATE TABLE trigger_webhooks (
    tenant_id       TEXT NOT NULL REFERENCES tenants (id),
    trigger_id      TEXT NOT NULL,
    body            TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    last_result     TEXT,
    created_at      INTEGER NOT NULL,
    delivered_at    INTEGER,
    PRIMARY KEY (tenant_id, trigger_id)
);
CREATE INDEX trigger_webhooks_due ON trigger_webhooks (tenant_id, status, next_attempt_at);
CREATE TRIGGER trigger_endpoints_tenant_immutable BEFORE UPDATE OF tenant_id ON trigger_endpoints
BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable'); END;
CREATE TRIGGER trigger_webhooks_tenant_immutable BEFORE UPDATE OF tenant_id ON trigger_webhooks
BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable'); END;
