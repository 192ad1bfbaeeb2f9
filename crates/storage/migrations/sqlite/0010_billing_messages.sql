-- Billing and messages. A membership's monthly credit allowance (credits_total grows by it for
-- every started month since starts_at, computed on read and redeem); processed processor
-- webhook events (a replayed event id is a no-op).
ALTER TABLE client_plans ADD COLUMN credits_per_period INTEGER CHECK (credits_per_period >= 0);

CREATE TABLE stripe_events (
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    event_id    TEXT NOT NULL,
    event_type  TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, event_id)
);

CREATE TRIGGER stripe_events_tenant_immutable BEFORE UPDATE OF tenant_id ON stripe_events
BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable'); END;
