-- Practice: the system of record. Personal fields of clients are stored only encrypted with the
-- tenant's data key (`*_ct`); exact lookups use keyed blind indexes (`*_bidx`, HMAC) and search
-- uses keyed tokens in client_search. Times are Unix seconds (UTC); the tenant's time zone turns
-- them into local working hours.
ALTER TABLE tenants ADD COLUMN timezone TEXT NOT NULL DEFAULT 'UTC';
ALTER TABLE tenants ADD COLUMN currency TEXT NOT NULL DEFAULT 'USD';
ALTER TABLE tenants ADD COLUMN reminder_lead_hours BIGINT NOT NULL DEFAULT 24;

CREATE TABLE locations (
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    id          TEXT NOT NULL,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE clients (
    tenant_id           TEXT NOT NULL REFERENCES tenants (id),
    id                  TEXT NOT NULL,
    name_ct             BYTEA NOT NULL,
    email_ct            BYTEA,
    phone_ct            BYTEA,
    birthday_ct         BYTEA,
    notes_ct            BYTEA,
    email_bidx          BYTEA,
    phone_bidx          BYTEA,
    marketing_consent   BOOLEAN NOT NULL DEFAULT FALSE,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX clients_email_bidx ON clients (tenant_id, email_bidx);
CREATE INDEX clients_phone_bidx ON clients (tenant_id, phone_bidx);

-- Keyed search tokens (HMAC of normalised n-grams); they reveal nothing without the tenant's key.
CREATE TABLE client_search (
    tenant_id   TEXT NOT NULL,
    token       BYTEA NOT NULL,
    client_id   TEXT NOT NULL,
    PRIMARY KEY (tenant_id, token, client_id),
    FOREIGN KEY (tenant_id, client_id) REFERENCES clients (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX client_search_client ON client_search (tenant_id, client_id);

CREATE TABLE services (
    tenant_id       TEXT NOT NULL REFERENCES tenants (id),
    id              TEXT NOT NULL,
    name            TEXT NOT NULL,
    category        TEXT NOT NULL CHECK (category IN ('neurotoxin', 'filler', 'laser', 'facial', 'massage', 'hair', 'nails', 'other')),
    duration_min    BIGINT NOT NULL CHECK (duration_min > 0),
    buffer_min      BIGINT NOT NULL DEFAULT 0 CHECK (buffer_min >= 0),
    price_minor     BIGINT NOT NULL CHECK (price_minor >= 0),
    currency        TEXT NOT NULL,
    cycle_days      BIGINT CHECK (cycle_days > 0),
    follow_up_days  BIGINT CHECK (follow_up_days > 0),
    active          BOOLEAN NOT NULL DEFAULT TRUE,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE providers (
    tenant_id       TEXT NOT NULL REFERENCES tenants (id),
    id              TEXT NOT NULL,
    name            TEXT NOT NULL,
    user_id         TEXT,
    active          BOOLEAN NOT NULL DEFAULT TRUE,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE provider_services (
    tenant_id   TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    service_id  TEXT NOT NULL,
    PRIMARY KEY (tenant_id, provider_id, service_id),
    FOREIGN KEY (tenant_id, provider_id) REFERENCES providers (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, service_id) REFERENCES services (tenant_id, id) ON DELETE CASCADE
);

-- Weekly working hours in the tenant's local time: weekday 0 = Monday; minutes from midnight.
CREATE TABLE provider_hours (
    tenant_id   TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    location_id TEXT NOT NULL,
    weekday     BIGINT NOT NULL CHECK (weekday BETWEEN 0 AND 6),
    start_min   BIGINT NOT NULL CHECK (start_min BETWEEN 0 AND 1440),
    end_min     BIGINT NOT NULL CHECK (end_min BETWEEN 0 AND 1440),
    PRIMARY KEY (tenant_id, provider_id, weekday, start_min),
    CHECK (start_min < end_min),
    FOREIGN KEY (tenant_id, provider_id) REFERENCES providers (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, location_id) REFERENCES locations (tenant_id, id)
);

CREATE TABLE time_off (
    tenant_id   TEXT NOT NULL,
    id          TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    starts_at   BIGINT NOT NULL,
    ends_at     BIGINT NOT NULL,
    reason      TEXT,
    PRIMARY KEY (tenant_id, id),
    CHECK (starts_at < ends_at),
    FOREIGN KEY (tenant_id, provider_id) REFERENCES providers (tenant_id, id) ON DELETE CASCADE
);

-- blocks_until = ends_at + the service's buffer: two live appointments of one provider never
-- overlap on [starts_at, blocks_until).
CREATE TABLE appointments (
    tenant_id       TEXT NOT NULL,
    id              TEXT NOT NULL,
    client_id       TEXT NOT NULL,
    provider_id     TEXT NOT NULL,
    service_id      TEXT NOT NULL,
    location_id     TEXT NOT NULL,
    starts_at       BIGINT NOT NULL,
    ends_at         BIGINT NOT NULL,
    blocks_until    BIGINT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('booked', 'completed', 'cancelled', 'no_show')),
    cancel_reason   TEXT,
    cancelled_by    TEXT CHECK (cancelled_by IN ('client', 'practice')),
    price_minor     BIGINT NOT NULL,
    currency        TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    CHECK (starts_at < ends_at AND ends_at <= blocks_until),
    FOREIGN KEY (tenant_id, client_id) REFERENCES clients (tenant_id, id),
    FOREIGN KEY (tenant_id, provider_id) REFERENCES providers (tenant_id, id),
    FOREIGN KEY (tenant_id, service_id) REFERENCES services (tenant_id, id),
    FOREIGN KEY (tenant_id, location_id) REFERENCES locations (tenant_id, id)
);
CREATE INDEX appointments_provider_time ON appointments (tenant_id, provider_id, starts_at);
CREATE INDEX appointments_client_time ON appointments (tenant_id, client_id, starts_at);

-- A membership (monthly price, credits per period) or a package (N sessions of one service).
CREATE TABLE client_plans (
    tenant_id       TEXT NOT NULL,
    id              TEXT NOT NULL,
    client_id       TEXT NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('membership', 'package')),
    name            TEXT NOT NULL,
    service_id      TEXT,
    price_minor     BIGINT NOT NULL CHECK (price_minor >= 0),
    currency        TEXT NOT NULL,
    credits_total   BIGINT NOT NULL CHECK (credits_total >= 0),
    credits_used    BIGINT NOT NULL DEFAULT 0 CHECK (credits_used >= 0),
    starts_at       BIGINT NOT NULL,
    expires_at      BIGINT,
    status          TEXT NOT NULL CHECK (status IN ('active', 'cancelled', 'expired')),
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    CHECK (credits_used <= credits_total),
    FOREIGN KEY (tenant_id, client_id) REFERENCES clients (tenant_id, id),
    FOREIGN KEY (tenant_id, service_id) REFERENCES services (tenant_id, id)
);

CREATE TABLE plan_redemptions (
    tenant_id       TEXT NOT NULL,
    id              TEXT NOT NULL,
    plan_id         TEXT NOT NULL,
    appointment_id  TEXT NOT NULL,
    redeemed_at     BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, plan_id) REFERENCES client_plans (tenant_id, id),
    FOREIGN KEY (tenant_id, appointment_id) REFERENCES appointments (tenant_id, id)
);
CREATE UNIQUE INDEX plan_redemptions_once ON plan_redemptions (tenant_id, appointment_id);

-- Charges and refunds: processor tokens and ids only (pm_…, cus_…, pi_…), never card data.
CREATE TABLE payments (
    tenant_id           TEXT NOT NULL,
    id                  TEXT NOT NULL,
    kind                TEXT NOT NULL CHECK (kind IN ('charge', 'refund')),
    appointment_id      TEXT,
    plan_id             TEXT,
    refund_of           TEXT,
    amount_minor        BIGINT NOT NULL CHECK (amount_minor > 0),
    currency            TEXT NOT NULL,
    payment_method      TEXT,
    processor_customer  TEXT,
    payment_intent      TEXT,
    status              TEXT NOT NULL,
    created_by          TEXT NOT NULL,
    created_at          BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, appointment_id) REFERENCES appointments (tenant_id, id),
    FOREIGN KEY (tenant_id, plan_id) REFERENCES client_plans (tenant_id, id),
    FOREIGN KEY (tenant_id, refund_of) REFERENCES payments (tenant_id, id)
);
CREATE INDEX payments_intent ON payments (tenant_id, payment_intent);

-- Messages to clients. The recipient address and the text are encrypted (payload_ct);
-- dedupe_key makes enqueueing idempotent (e.g. `reminder:<appointment id>`).
CREATE TABLE outbox (
    tenant_id       TEXT NOT NULL,
    id              TEXT NOT NULL,
    client_id       TEXT NOT NULL,
    appointment_id  TEXT,
    kind            TEXT NOT NULL,
    channel         TEXT NOT NULL,
    dedupe_key      TEXT NOT NULL,
    payload_ct      BYTEA NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'skipped')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    sent_at         BIGINT,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, client_id) REFERENCES clients (tenant_id, id)
);
CREATE UNIQUE INDEX outbox_dedupe ON outbox (tenant_id, dedupe_key);
CREATE INDEX outbox_due ON outbox (tenant_id, status, next_attempt_at);

CREATE TABLE message_attempts (
    tenant_id       TEXT NOT NULL,
    message_id      TEXT NOT NULL,
    attempt         BIGINT NOT NULL,
    attempted_at    BIGINT NOT NULL,
    outcome         TEXT NOT NULL CHECK (outcome IN ('sent', 'failed', 'skipped')),
    detail          TEXT,
    PRIMARY KEY (tenant_id, message_id, attempt),
    FOREIGN KEY (tenant_id, message_id) REFERENCES outbox (tenant_id, id) ON DELETE CASCADE
);

-- Every export: who, when, what, how many rows (also appended to the audit chain).
CREATE TABLE exports (
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    id          TEXT NOT NULL,
    actor       TEXT NOT NULL,
    kind        TEXT NOT NULL,
    row_count   BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

-- Idempotency-Key: the first response to a POST, replayed for retries of the same request.
-- idem_key is SHA-256 of (actor, key), so one member's key never collides with another's. The
-- response is stored encrypted with the tenant's data key (it may name a client); status_code is
-- NULL while the first request is still running.
CREATE TABLE idempotency_keys (
    tenant_id       TEXT NOT NULL REFERENCES tenants (id),
    idem_key        TEXT NOT NULL,
    actor           TEXT NOT NULL,
    fingerprint     BYTEA NOT NULL,
    status_code     BIGINT,
    response_ct     BYTEA,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, idem_key)
);
CREATE INDEX idempotency_keys_age ON idempotency_keys (tenant_id, created_at);

-- tenant_id never changes; row-level security is the second wall.
CREATE TRIGGER locations_tenant_immutable BEFORE UPDATE ON locations
    FOR EACH ROW EXECUTE FUNCTION lacuna_tenant_immutable();
CREATE TRIGGER clients_tenant_immutable BEFORE UPDATE ON clients
    FOR EACH ROW EXECUTE FUNCTION lacuna_tenant_immutable();
CREATE TRIGGER client_search_tenant_immutable BEFORE UPDATE ON client_search
    FOR EACH ROW EXECUTE FUNCTION lacuna_tenant_immutable();
CREATE TRIGGER services_tenant_immutable BEFORE UPDATE ON services
    FOR EACH ROW EXECUTE FUNCTION lacuna_tenant_immutable();
CREATE TRIGGER providers_tenant_immutable BEFORE UPDATE ON providers
    FOR EACH ROW EXECUTE FUNCTION lacuna_tenant_immutable();
CREATE TRIGGER provider_services_tenant_immutable BEFORE UPDATE ON provider_services
    FOR EACH ROW EXECUTE FUNCTION lacuna_tenant_immutable();
CREATE TRIGGER provider_hours_tenant_immutable BEFORE UPDATE ON provider_hours
    FOR EACH ROW EXECUTE FUNCTION lacuna_tenant_immutable();
CREATE TRIGGER time_off_tenant_immutable BEFORE UPDATE ON time_off
    FOR EACH ROW EXECUTE FUNCTION lacuna_tenant_immutable();
CREATE TRIGGER appointments_tenant_immutable BEFORE UPDATE ON appointments
    FOR EACH ROW EXECUTE FUNCTION lacuna_tenant_immutable();
CREATE TRIGGER client_plans_tenant_immutable BEFORE UPDATE ON client_plans
    FOR EACH ROW EXECUTE FUNCTION lacuna_tenant_immutable();
CREATE TRIGGER plan_redemptions_tenant_immutable BEFORE UPDATE ON plan_redemptions
    FOR EACH ROW EXECUTE FUNCTION lacuna_tenant_immutable();
CREATE TRIGGER payments_tenant_immutable BEFORE UPDATE ON payments
    FOR EACH ROW EXECUTE FUNCTION lacuna_tenant_immutable();
CREATE TRIGGER outbox_tenant_immutable BEFORE UPDATE ON outbox
    FOR EACH ROW EXECUTE FUNCTION lacuna_tenant_immutable();
CREATE TRIGGER message_attempts_tenant_immutable BEFORE UPDATE ON message_attempts
    FOR EACH ROW EXECUTE FUNCTION lacuna_tenant_immutable();
CREATE TRIGGER exports_tenant_immutable BEFORE UPDATE ON exports
    FOR EACH ROW EXECUTE FUNCTION lacuna_tenant_immutable();
CREATE TRIGGER idempotency_keys_tenant_immutable BEFORE UPDATE ON idempotency_keys
    FOR EACH ROW EXECUTE FUNCTION lacuna_tenant_immutable();

ALTER TABLE locations ENABLE ROW LEVEL SECURITY;
ALTER TABLE locations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON locations
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

ALTER TABLE clients ENABLE ROW LEVEL SECURITY;
ALTER TABLE clients FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON clients
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

ALTER TABLE client_search ENABLE ROW LEVEL SECURITY;
ALTER TABLE client_search FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON client_search
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

ALTER TABLE services ENABLE ROW LEVEL SECURITY;
ALTER TABLE services FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON services
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

ALTER TABLE providers ENABLE ROW LEVEL SECURITY;
ALTER TABLE providers FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON providers
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

ALTER TABLE provider_services ENABLE ROW LEVEL SECURITY;
ALTER TABLE provider_services FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON provider_services
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

ALTER TABLE provider_hours ENABLE ROW LEVEL SECURITY;
ALTER TABLE provider_hours FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON provider_hours
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

ALTER TABLE time_off ENABLE ROW LEVEL SECURITY;
ALTER TABLE time_off FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON time_off
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

ALTER TABLE appointments ENABLE ROW LEVEL SECURITY;
ALTER TABLE appointments FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON appointments
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

ALTER TABLE client_plans ENABLE ROW LEVEL SECURITY;
ALTER TABLE client_plans FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON client_plans
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

ALTER TABLE plan_redemptions ENABLE ROW LEVEL SECURITY;
ALTER TABLE plan_redemptions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON plan_redemptions
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

ALTER TABLE payments ENABLE ROW LEVEL SECURITY;
ALTER TABLE payments FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON payments
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

ALTER TABLE outbox ENABLE ROW LEVEL SECURITY;
ALTER TABLE outbox FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON outbox
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

ALTER TABLE message_attempts ENABLE ROW LEVEL SECURITY;
ALTER TABLE message_attempts FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON message_attempts
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

ALTER TABLE exports ENABLE ROW LEVEL SECURITY;
ALTER TABLE exports FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON exports
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

ALTER TABLE idempotency_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE idempotency_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON idempotency_keys
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
