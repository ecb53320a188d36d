//! Principals: ListPrincipals (and Initialize, Authenticate, CreatePrincipal, DeletePrincipal,
//! UnblockPin, FactoryReset, which answer nothing).

use pkms_protocol::access::Role;
use serde::{Serialize, Serializer};

/// A principal as ListPrincipals reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Principal {
    /// Name.
    pub name: String,
    /// Role: `ADMIN` or `USER`.
    #[serde(serialize_with = "role")]
    pub role: Role,
    /// PIN tries left (0: locked).
    pub pin_retries_left: u8,
}

/// ListPrincipals's answer: `{"Principals": […]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListPrincipalsOutput {
    /// Principals.
    pub principals: Vec<Principal>,
}

/// A role's name: `ADMIN` or `USER`.
pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Admin => "ADMIN",
        Role::User => "USER",
    }
}

fn role<S: Serializer>(role: &Role, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(role_name(*role))
}

impl super::Owned for pkms_protocol::kind::Principals {
    type Output = Vec<Principal>;
    fn own(r: pkms_protocol::reply::Principals<'_>) -> Vec<Principal> {
        r.principals
            .iter()
            .map(|p| Principal {
                name: p.name.to_owned(),
                role: p.role,
                pin_retries_left: p.pin_retries_left,
            })
            .collect()
    }
}
