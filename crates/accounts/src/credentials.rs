//! Wire formats of the secrets we hand out. Each names its tenant in clear (so the lookup can
//! go through that tenant's handle) and carries 256 bits of randomness; only its SHA-256 is
//! stored.

use lacuna_crypto::{random_token, sha256};
use lacuna_domain::TenantId;
use uuid::Uuid;

const API_PREFIX: &str = "lac_";

/// A parsed credential: its tenant and the digest to look up.
pub struct Credential {
    pub tenant: TenantId,
    pub digest: Vec<u8>,
}

impl Credential {
    /// `<tenant as 32 hex>.<secret>`: session cookies and invitations.
    pub fn issue_dotted(tenant: TenantId) -> (String, Credential) {
        let value = format!("{}.{}", tenant.as_uuid().simple(), random_token(32));
        let digest = sha256(value.as_bytes());
        (value, Credential { tenant, digest })
    }

    pub fn parse_dotted(value: &str) -> Option<Credential> {
        let (tenant, secret) = value.split_once('.')?;
        if tenant.len() != 32 || secret.len() != 43 {
            return None;
        }
        let tenant = Uuid::try_parse(tenant).ok()?;
        Some(Credential { tenant: tenant.into(), digest: sha256(value.as_bytes()) })
    }

    /// `lac_<tenant as 32 hex><secret>`: API tokens (the prefix helps secret scanners).
    pub fn issue_api(tenant: TenantId) -> (String, Credential) {
        let value = format!("{API_PREFIX}{}{}", tenant.as_uuid().simple(), random_token(32));
        let digest = sha256(value.as_bytes());
        (value, Credential { tenant, digest })
    }

    pub fn parse_api(value: &str) -> Option<Credential> {
        let rest = value.strip_prefix(API_PREFIX)?;
        if rest.len() != 32 + 43 || !rest.is_ascii() {
            return None;
        }
        let tenant = Uuid::try_parse(&rest[..32]).ok()?;
        Some(Credential { tenant: tenant.into(), digest: sha256(value.as_bytes()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_garbage() {
        let t = TenantId::new();
        let (v, c) = Credential::issue_dotted(t);
        let p = Credential::parse_dotted(&v).expect("parses");
        assert_eq!(p.tenant, t);
        assert_eq!(p.digest, c.digest);
        let (a, c) = Credential::issue_api(t);
        let p = Credential::parse_api(&a).expect("parses");
        assert_eq!((p.tenant, p.digest), (t, c.digest));
        for bad in ["", "x.y", "lac_", "lac_zz", &v[1..], &a[..a.len() - 1], "lac_ü"] {
            assert!(Credential::parse_dotted(bad).is_none() || bad == v);
            assert!(Credential::parse_api(bad).is_none());
        }
    }
}
