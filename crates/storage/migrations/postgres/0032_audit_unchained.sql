-- Audit entries are written unchained in the transaction of the change (sealed: an HMAC over the
-- entry and its random id, under the audit key) and linked into the chain right after commit,
-- in batches, by the tenant's chainer. Commits of one practice no longer queue behind each other
-- at the chain's head. A chained row can never change again; an unchained one can only be linked
-- (seq, prev_hash and entry_hash set once, nothing else touched).
ALTER TABLE audit_events DROP CONSTRAINT audit_events_pkey;
ALTER TABLE audit_events
    ALTER COLUMN seq DROP NOT NULL,
    ALTER COLUMN prev_hash DROP NOT NULL,
    ALTER COLUMN entry_hash DROP NOT NULL,
    ADD COLUMN pos BIGINT GENERATED ALWAYS AS IDENTITY,
    ADD COLUMN entry_id TEXT,
    ADD COLUMN seal BYTEA;
ALTER TABLE audit_events ADD PRIMARY KEY (pos);
ALTER TABLE audit_events ADD CONSTRAINT audit_events_linked
    CHECK ((seq IS NULL) = (prev_hash IS NULL) AND (seq IS NULL) = (entry_hash IS NULL));
ALTER TABLE audit_events ADD CONSTRAINT audit_events_seq_positive CHECK (seq IS NULL OR seq >= 1);
ALTER TABLE audit_events ADD CONSTRAINT audit_events_sealed
    CHECK (seq IS NOT NULL OR (entry_id IS NOT NULL AND seal IS NOT NULL));
CREATE UNIQUE INDEX audit_events_chain ON audit_events (tenant_id, seq);
CREATE UNIQUE INDEX audit_events_entry ON audit_events (tenant_id, entry_id);
CREATE INDEX audit_events_unchained ON audit_events (tenant_id, pos) WHERE seq IS NULL;

CREATE OR REPLACE FUNCTION lacuna_audit_append_only() RETURNS trigger LANGUAGE plpgsql SET search_path = '' AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.seq IS NULL AND NEW.seq IS NOT NULL
        AND (NEW.pos, NEW.tenant_id, NEW.occurred_at, NEW.actor, NEW.actor_role, NEW.action, NEW.target,
             NEW.scope, NEW.client_addr, NEW.request_id, NEW.entry_id, NEW.seal)
            IS NOT DISTINCT FROM
            (OLD.pos, OLD.tenant_id, OLD.occurred_at, OLD.actor, OLD.actor_role, OLD.action, OLD.target,
             OLD.scope, OLD.client_addr, OLD.request_id, OLD.entry_id, OLD.seal) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit events are append-only';
END $$;

-- Entries arrive unchained: only the chainer links them. A row inserted already linked (say at
-- the head's next place, to block the chainer) is refused.
CREATE FUNCTION lacuna_audit_arrives_unchained() RETURNS trigger LANGUAGE plpgsql SET search_path = '' AS $$
BEGIN
    IF NEW.seq IS NOT NULL OR NEW.prev_hash IS NOT NULL OR NEW.entry_hash IS NOT NULL THEN
        RAISE EXCEPTION 'audit events are written unchained';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER audit_events_unchained_insert BEFORE INSERT ON audit_events
    FOR EACH ROW EXECUTE FUNCTION lacuna_audit_arrives_unchained();
