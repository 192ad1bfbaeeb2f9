-- Request log: one row per inbound request and per outbound call. Never bodies, query strings,
-- raw paths or personal data. Rows of requests made before sign-in have no tenant.
CREATE TABLE request_log (
    tenant_id       TEXT,
    occurred_at     BIGINT NOT NULL,
    direction       TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    method          TEXT NOT NULL,
    route           TEXT NOT NULL,
    status          INTEGER NOT NULL,
    latency_us      BIGINT NOT NULL,
    actor           TEXT,
    request_id      TEXT NOT NULL
);
CREATE INDEX request_log_tenant_time ON request_log (tenant_id, occurred_at);
CREATE INDEX request_log_time ON request_log (occurred_at);

-- A tenant sees only its own rows, plus the rows of requests made before sign-in (no tenant,
-- no actor: a route, a status and a time). PostgreSQL applies this SELECT policy to the purge's
-- DELETE too, which is why those rows must be visible.
ALTER TABLE request_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE request_log FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_read ON request_log FOR SELECT
    USING (tenant_id IS NULL OR tenant_id = current_setting('app.tenant_id', true));
CREATE POLICY tenant_insert ON request_log FOR INSERT
    WITH CHECK (tenant_id IS NULL OR tenant_id = current_setting('app.tenant_id', true));
CREATE POLICY tenant_purge ON request_log FOR DELETE
    USING (tenant_id IS NULL OR tenant_id = current_setting('app.tenant_id', true));
