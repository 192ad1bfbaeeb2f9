-- Retention: an owner cancels; 90 days later the tenant is deleted (keys shredded, data removed;
-- the audit chain, which holds no personal data, stays and records the deletion).
ALTER TABLE tenants ADD COLUMN cancelled_at BIGINT;
ALTER TABLE tenants ADD COLUMN deleted_at BIGINT;
