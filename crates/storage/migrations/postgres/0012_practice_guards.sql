-- Practice guards: client notes checked for clinical content and identifiers (warn or reject, per
-- practice); a lease on messages claimed for delivery, so a crashed worker's claim can be taken
-- back (recorded as an `abandoned` attempt); providers found by the login linked to them (a member
-- without schedule.read_all sees only those providers' appointments).
ALTER TABLE tenants ADD COLUMN notes_phi_policy TEXT NOT NULL DEFAULT 'warn'
    CHECK (notes_phi_policy IN ('warn', 'reject'));

ALTER TABLE outbox ADD COLUMN claimed_at BIGINT;
CREATE INDEX outbox_claimed ON outbox (tenant_id, status, claimed_at);

ALTER TABLE message_attempts DROP CONSTRAINT message_attempts_outcome_check;
ALTER TABLE message_attempts ADD CONSTRAINT message_attempts_outcome_check
    CHECK (outcome IN ('sent', 'failed', 'skipped', 'abandoned'));

CREATE INDEX providers_user ON providers (tenant_id, user_id);

-- Members and tokens narrowed before schedule.read_all existed keep seeing the whole calendar
-- (providers excepted: seeing only their own appointments is what the new permission is for).
-- FORCE row-level security hides every row from a migrating owner that is neither superuser nor
-- BYPASSRLS: such a setup must add the permission by hand (PATCH /api/v1/members/{id}).
UPDATE members SET permissions = permissions || ',schedule.read_all'
    WHERE permissions IS NOT NULL AND role IN ('manager', 'front_desk')
      AND (',' || permissions || ',') LIKE '%,schedule.read,%';
UPDATE api_tokens SET permissions = permissions || ',schedule.read_all'
    WHERE (',' || permissions || ',') LIKE '%,schedule.read,%';
