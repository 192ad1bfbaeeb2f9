-- Audit entries are written unchained in the transaction of the change (sealed: an HMAC over the
-- entry and its random id, under the audit key) and linked into the chain right after commit,
-- in batches, by the tenant's chainer. A chained row can never change again; an unchained one can
-- only be linked (seq, prev_hash and entry_hash set once, nothing else touched). SQLite cannot
-- change a primary key in place, so the table is rebuilt with the columns PostgreSQL's has.
CREATE TABLE audit_events_linked (
    tenant_id       TEXT NOT NULL REFERENCES tenants (id),
    seq             INTEGER,
    occurred_at     INTEGER NOT NULL,
    actor           TEXT NOT NULL,
    actor_role      TEXT,
    action          TEXT NOT NULL,
    target          TEXT,
    scope           TEXT NOT NULL,
    client_addr     TEXT,
    request_id      TEXT,
    prev_hash       BLOB,
    entry_hash      BLOB,
    pos             INTEGER PRIMARY KEY,
    entry_id        TEXT,
    seal            BLOB,
    CHECK ((seq IS NULL) = (prev_hash IS NULL) AND (seq IS NULL) = (entry_hash IS NULL)),
    CHECK (seq IS NULL OR seq >= 1),
    CHECK (seq IS NOT NULL OR (entry_id IS NOT NULL AND seal IS NOT NULL))
);
INSERT INTO audit_events_linked (tenant_id, seq, occurred_at, actor, actor_role, action, target, scope,
        client_addr, request_id, prev_hash, entry_hash)
    SELECT tenant_id, seq, occurred_at, actor, actor_role, action, target, scope, client_addr, request_id,
        prev_hash, entry_hash
    FROM audit_events ORDER BY tenant_id, seq;
DROP TABLE audit_events;
ALTER TABLE audit_events_linked RENAME TO audit_events;
CREATE INDEX audit_events_action ON audit_events (tenant_id, action, occurred_at);
CREATE UNIQUE INDEX audit_events_chain ON audit_events (tenant_id, seq);
CREATE UNIQUE INDEX audit_events_entry ON audit_events (tenant_id, entry_id);
CREATE INDEX audit_events_unchained ON audit_events (tenant_id, pos) WHERE seq IS NULL;

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
WHEN NOT (OLD.seq IS NULL AND NEW.seq IS NOT NULL
    AND NEW.pos IS OLD.pos AND NEW.tenant_id IS OLD.tenant_id AND NEW.occurred_at IS OLD.occurred_at
    AND NEW.actor IS OLD.actor AND NEW.actor_role IS OLD.actor_role AND NEW.action IS OLD.action
    AND NEW.target IS OLD.target AND NEW.scope IS OLD.scope AND NEW.client_addr IS OLD.client_addr
    AND NEW.request_id IS OLD.request_id AND NEW.entry_id IS OLD.entry_id AND NEW.seal IS OLD.seal)
BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
