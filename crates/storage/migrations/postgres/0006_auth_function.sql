-- The authentication read in one round trip: a function (SECURITY INVOKER: it runs as the
-- application role, so row-level security applies) that sets the tenant transaction-locally and
-- returns the session joined with its member, login identity, MFA factor and tenant. Called as a
-- single autocommit statement, its implicit transaction ends with it, and the setting with it.
CREATE FUNCTION lacuna_session_auth(p_tenant text, p_hash bytea)
RETURNS TABLE (
    user_id text, csrf_token text, created_at bigint, last_seen_at bigint, expires_at bigint,
    revoked_at bigint, mfa_pending boolean, mfa_verified_at bigint, email text, name text, role text,
    permissions text, password_hash text, member_created_at bigint, mfa_enrolled boolean,
    tenant_name text, mfa_policy text, cancelled_at bigint, deleted_at bigint)
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = public AS $$
BEGIN
    PERFORM set_config('app.tenant_id', p_tenant, true);
    RETURN QUERY
        SELECT s.user_id, s.csrf_token, s.created_at, s.last_seen_at, s.expires_at, s.revoked_at,
               s.mfa_pending, s.mfa_verified_at, u.email, m.name, m.role, m.permissions, u.password_hash,
               m.created_at, (f.confirmed_at IS NOT NULL), t.name, t.mfa_policy, t.cancelled_at, t.deleted_at
        FROM sessions s
        JOIN members m ON m.tenant_id = s.tenant_id AND m.user_id = s.user_id
        JOIN users u ON u.tenant_id = m.tenant_id AND u.id = m.user_id
        JOIN tenants t ON t.id = s.tenant_id
        LEFT JOIN mfa_factors f ON f.tenant_id = s.tenant_id AND f.user_id = s.user_id
        WHERE s.tenant_id = p_tenant AND s.token_hash = p_hash;
END $$;
