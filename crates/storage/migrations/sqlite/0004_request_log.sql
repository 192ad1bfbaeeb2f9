-- Request log: one row per inbound request and per outbound call. Never bodies, query strings,
-- raw paths or personal data. Rows of requests made before sign-in have no tenant.
CREATE TABLE request_log (
    tenant_id       TEXT,
    occurred_at     INTEGER NOT NULL,
    direction       TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    method          TEXT NOT NULL,
    route           TEXT NOT NULL,
    status          INTEGER NOT NULL,
    latency_us      INTEGER NOT NULL,
    actor           TEXT,
    request_id      TEXT NOT NULL
);
CREATE INDEX request_log_tenant_time ON request_log (tenant_id, occurred_at);
CREATE INDEX request_log_time ON request_log (occurred_at);
