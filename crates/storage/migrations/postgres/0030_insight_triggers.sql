-- Triggers from Insight that the Practice side has carried out: one row per trigger id, so a
-- trigger delivered twice is carried out once. The outcome says what was done (queued, no
-- consent, unknown client, sent to the external system); no personal data.
CREATE TABLE insight_triggers (
    tenant_id       TEXT NOT NULL REFERENCES tenants (id),
    id              TEXT NOT NULL,
    action_kind     TEXT NOT NULL,
    outcome         TEXT NOT NULL,
    message_id      TEXT,
    received_at     BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE TRIGGER insight_triggers_tenant_immutable BEFORE UPDATE ON insight_triggers
    FOR EACH ROW EXECUTE FUNCTION lacuna_tenant_immutable();
ALTER TABLE insight_triggers ENABLE ROW LEVEL SECURITY;
ALTER TABLE insight_triggers FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON insight_triggers
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
