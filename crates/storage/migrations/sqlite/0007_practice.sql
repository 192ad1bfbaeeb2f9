-- Practice: the system of record. Personal fields of clients are stored only encrypted with the
-- tenant's data key (`*_ct`); exact lookups use keyed blind indexes (`*_bidx`, HMAC) and search
-- uses keyed tokens in client_search. Times are Unix seconds (UTC); the tenant's time zone turns
-- them into local working hours.
ALTER TABLE tenants ADD COLUMN timezone TEXT NOT NULL DEFAULT 'UTC';
ALTER TABLE tenants ADD COLUMN currency TEXT NOT NULL DEFAULT 'USD';
ALTER TABLE tenants ADD COLUMN reminder_lead_hours INTEGER NOT NULL DEFAULT 24;

CREATE TABLE locations (
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    id          TEXT NOT NULL,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE clients (
    tenant_id           TEXT NOT NULL REFERENCES tenants (id),
    id                  TEXT NOT NULL,
    name_ct             BLOB NOT NULL,
    email_ct            BLOB,
    phone_ct            BLOB,
    birthday_ct         BLOB,
    notes_ct            BLOB,
    email_bidx          BLOB,
    phone_bidx          BLOB,
    marketing_consent   BOOLEAN NOT NULL DEFAULT FALSE,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX clients_email_bidx ON clients (tenant_id, email_bidx);
CREATE INDEX clients_phone_bidx ON clients (tenant_id, phone_bidx);

-- Keyed search tokens (HMAC of normalised n-grams); they reveal nothing without the tenant's key.
CREATE TABLE client_search (
    tenant_id   TEXT NOT NULL,
    token       BLOB NOT NULL,
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
    duration_min    INTEGER NOT NULL CHECK (duration_min > 0),
    buffer_min      INTEGER NOT NULL DEFAULT 0 CHECK (buffer_min >= 0),
    price_minor     INTEGER NOT NULL CHECK (price_minor >= 0),
    currency        TEXT NOT NULL,
    cycle_days      INTEGER CHECK (cycle_days > 0),
    follow_up_days  INTEGER CHECK (follow_up_days > 0),
    active          BOOLEAN NOT NULL DEFAULT TRUE,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE providers (
    tenant_id       TEXT NOT NULL REFERENCES tenants (id),
    id              TEXT NOT NULL,
    name            TEXT NOT NULL,
    user_id         TEXT,
    active          BOOLEAN NOT NULL DEFAULT TRUE,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
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
    weekday     INTEGER NOT NULL CHECK (weekday BETWEEN 0 AND 6),
    start_min   INTEGER NOT NULL CHECK (start_min BETWEEN 0 AND 1440),
    end_min     INTEGER NOT NULL CHECK (end_min BETWEEN 0 AND 1440),
    PRIMARY KEY (tenant_id, provider_id, weekday, start_min),
    CHECK (start_min < end_min),
    FOREIGN KEY (tenant_id, provider_id) REFERENCES providers (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, location_id) REFERENCES locations (tenant_id, id)
);

CREATE TABLE time_off (
    tenant_id   TEXT NOT NULL,
    id          TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    starts_at   INTEGER NOT NULL,
    ends_at     INTEGER NOT NULL,
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
    starts_at       INTEGER NOT NULL,
    ends_at         INTEGER NOT NULL,
    blocks_until    INTEGER NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('booked', 'completed', 'cancelled', 'no_show')),
    cancel_reason   TEXT,
    cancelled_by    TEXT CHECK (cancelled_by IN ('client', 'practice')),
    price_minor     INTEGER NOT NULL,
    currency        TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
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
    price_minor     INTEGER NOT NULL CHECK (price_minor >= 0),
    currency        TEXT NOT NULL,
    credits_total   INTEGER NOT NULL CHECK (credits_total >= 0),
    credits_used    INTEGER NOT NULL DEFAULT 0 CHECK (credits_used >= 0),
    starts_at       INTEGER NOT NULL,
    expires_at      INTEGER,
    status          TEXT NOT NULL CHECK (status IN ('active', 'cancelled', 'expired')),
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
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
    redeemed_at     INTEGER NOT NULL,
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
    amount_minor        INTEGER NOT NULL CHECK (amount_minor > 0),
    currency            TEXT NOT NULL,
    payment_method      TEXT,
    processor_customer  TEXT,
    payment_intent      TEXT,
    status              TEXT NOT NULL,
    created_by          TEXT NOT NULL,
    created_at          INTEGER NOT NULL,
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
    payload_ct      BLOB NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'skipped')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    sent_at         INTEGER,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, client_id) REFERENCES clients (tenant_id, id)
);
CREATE UNIQUE INDEX outbox_dedupe ON outbox (tenant_id, dedupe_key);
CREATE INDEX outbox_due ON outbox (tenant_id, status, next_attempt_at);

CREATE TABLE message_attempts (
    tenant_id       TEXT NOT NULL,
    message_id      TEXT NOT NULL,
    attempt         INTEGER NOT NULL,
    attempted_at    INTEGER NOT NULL,
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
    row_count   INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
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
    fingerprint     BLOB NOT NULL,
    status_code     INTEGER,
    response_ct     BLOB,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, idem_key)
);
CREATE INDEX idempotency_keys_age ON idempotency_keys (tenant_id, created_at);

CREATE TRIGGER locations_tenant_immutable BEFORE UPDATE OF tenant_id ON locations
BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable'); END;
CREATE TRIGGER clients_tenant_immutable BEFORE UPDATE OF tenant_id ON clients
BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable'); END;
CREATE TRIGGER client_search_tenant_immutable BEFORE UPDATE OF tenant_id ON client_search
BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable'); END;
CREATE TRIGGER services_tenant_immutable BEFORE UPDATE OF tenant_id ON services
BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable'); END;
CREATE TRIGGER providers_tenant_immutable BEFORE UPDATE OF tenant_id ON providers
BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable'); END;
CREATE TRIGGER provider_services_tenant_immutable BEFORE UPDATE OF tenant_id ON provider_services
BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable'); END;
CREATE TRIGGER provider_hours_tenant_immutable BEFORE UPDATE OF tenant_id ON provider_hours
BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable'); END;
CREATE TRIGGER time_off_tenant_immutable BEFORE UPDATE OF tenant_id ON time_off
BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable'); END;
CREATE TRIGGER appointments_tenant_immutable BEFORE UPDATE OF tenant_id ON appointments
BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable'); END;
CREATE TRIGGER client_plans_tenant_immutable BEFORE UPDATE OF tenant_id ON client_plans
BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable'); END;
CREATE TRIGGER plan_redemptions_tenant_immutable BEFORE UPDATE OF tenant_id ON plan_redemptions
BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable'); END;
CREATE TRIGGER payments_tenant_immutable BEFORE UPDATE OF tenant_id ON payments
BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable'); END;
CREATE TRIGGER outbox_tenant_immutable BEFORE UPDATE OF tenant_id ON outbox
BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable'); END;
CREATE TRIGGER message_attempts_tenant_immutable BEFORE UPDATE OF tenant_id ON message_attempts
BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable'); END;
CREATE TRIGGER exports_tenant_immutable BEFORE UPDATE OF tenant_id ON exports
BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable'); END;
CREATE TRIGGER idempotency_keys_tenant_immutable BEFORE UPDATE OF tenant_id ON idempotency_keys
BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable'); END;
