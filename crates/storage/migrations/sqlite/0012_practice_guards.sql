-- Practice guards: client notes checked for clinical content and identifiers (warn or reject, per
-- practice); a lease on messages claimed for delivery, so a crashed worker's claim can be taken
-- back (recorded as an `abandoned` attempt); providers found by the login linked to them (a member
-- without schedule.read_all sees only those providers' appointments).
ALTER TABLE tenants ADD COLUMN notes_phi_policy TEXT NOT NULL DEFAULT 'warn'
    CHECK (notes_phi_policy IN ('warn', 'reject'));

ALTER TABLE outbox ADD COLUMN claimed_at INTEGER;
CREATE INDEX outbox_claimed ON outbox (tenant_id, status, claimed_at);

-- SQLite cannot change a CHECK constraint in place: the table is rebuilt (nothing refers to it).
CREATE TABLE message_attempts_new (
    tenant_id       TEXT NOT NULL,
    message_id      TEXT NOT NULL,
    attempt         INTEGER NOT NULL,
    attempted_at    INTEGER NOT NULL,
    outcome         TEXT NOT NULL CHECK (outcome IN ('sent', 'failed', 'skipped', 'abandoned')),
    detail          TEXT,
    PRIMARY KEY (tenant_id, message_id, attempt),
    FOREIGN KEY (tenant_id, message_id) REFERENCES outbox (tenant_id, id) ON DELETE CASCADE
);
INSERT INTO message_attempts_new SELECT tenant_id, message_id, attempt, attempted_at, outcome, detail
    FROM message_attempts;
DROP TABLE message_attempts;
ALTER TABLE message_attempts_new RENAME TO message_attempts;
CREATE TRIGGER message_attempts_tenant_immutable BEFORE UPDATE OF tenant_id ON message_attempts
BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable'); END;

CREATE INDEX providers_user ON providers (tenant_id, user_id);

-- Members and tokens narrowed before schedule.read_all existed keep seeing the whole calendar
-- (providers excepted: seeing only their own appointments is what the new permission is for).
UPDATE members SET permissions = permissions || ',schedule.read_all'
    WHERE permissions IS NOT NULL AND role IN ('manager', 'front_desk')
      AND (',' || permissions || ',') LIKE '%,schedule.read,%';
UPDATE api_tokens SET permissions = permissions || ',schedule.read_all'
    WHERE (',' || permissions || ',') LIKE '%,schedule.read,%';
