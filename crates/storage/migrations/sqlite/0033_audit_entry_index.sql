-- Only unchained-on-arrival entries carry an entry id (PostgreSQL's); SQLite writes its entries
-- linked, without one. Indexing the NULLs only cost every SQLite audit insert a B-tree update.
DROP INDEX audit_events_entry;
CREATE UNIQUE INDEX audit_events_entry ON audit_events (tenant_id, entry_id) WHERE entry_id IS NOT NULL;
