-- MFA: one TOTP factor per member (secret encrypted with the tenant's data key), single-use
-- recovery codes (hashed), session state for the second factor, and the tenant's MFA policy.
CREATE TABLE mfa_factors (
    tenant_id       TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    secret_ct       BLOB NOT NULL,
    confirmed_at    INTEGER,
    last_step       INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, user_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES members (tenant_id, user_id) ON DELETE CASCADE
);

CREATE TABLE mfa_recovery_codes (
    tenant_id   TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    code_hash   BLOB NOT NULL,
    used_at     INTEGER,
    PRIMARY KEY (tenant_id, user_id, code_hash),
    FOREIGN KEY (tenant_id, user_id) REFERENCES members (tenant_id, user_id) ON DELETE CASCADE
);

ALTER TABLE sessions ADD COLUMN mfa_pending BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE sessions ADD COLUMN mfa_verified_at INTEGER;
ALTER TABLE tenants ADD COLUMN mfa_policy TEXT NOT NULL DEFAULT 'optional'
    CHECK (mfa_policy IN ('optional', 'owners_managers', 'everyone'));

CREATE TRIGGER mfa_factors_tenant_immutable BEFORE UPDATE OF tenant_id ON mfa_factors
BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable'); END;
