//! Who is calling: bearer tokens mapped to an actor and a role.
//!
//! Every gRPC call except the health check must carry `authorization: Bearer <token>`; the
//! token is looked up in the configured table (`REDRESS_AUTH_TOKENS`) and the caller's
//! [`Identity`] is put into the request's extensions for the handler, which also records it as
//! the actor of the events it writes. Unknown or missing tokens are refused with
//! `Unauthenticated` before any handler runs. What the caller may then see and do is
//! [`crate::access`].

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use tonic::{Request, Status};

/// A caller's role, as in DOMAIN.md: who may do what is decided by each service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    Handler,
    DepartmentManager,
    CustomerServiceAgent,
    GeneralManager,
    /// A call-centre system or another machine client.
    Integration,
    /// An operator: administration and reports.
    Operator,
    /// Reads only (a wall screen, a dashboard): every complaint, customers masked, no command.
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Handler => "handler",
            Role::DepartmentManager => "department_manager",
            Role::CustomerServiceAgent => "customer_service_agent",
            Role::GeneralManager => "general_manager",
            Role::Integration => "integration",
            Role::Operator => "operator",
            Role::Viewer => "viewer",
        }
    }

    /// The protobuf enum value of this role.
    pub fn to_proto(self) -> redress_proto::v1::Role {
        use redress_proto::v1::Role as P;
        match self {
            Role::Handler => P::Handler,
            Role::DepartmentManager => P::DepartmentManager,
            Role::CustomerServiceAgent => P::CustomerServiceAgent,
            Role::GeneralManager => P::GeneralManager,
            Role::Integration => P::Integration,
            Role::Operator => P::Operator,
            Role::Viewer => P::Viewer,
        }
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "handler" => Role::Handler,
            "department_manager" | "manager" => Role::DepartmentManager,
            "customer_service_agent" | "agent" => Role::CustomerServiceAgent,
            "general_manager" => Role::GeneralManager,
            "integration" => Role::Integration,
            "operator" | "admin" => Role::Operator,
            "viewer" | "wallboard" => Role::Viewer,
            other => return Err(format!("unknown role {other:?}")),
        })
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub actor_id: String,
    pub display_name: String,
    pub role: Role,
    /// The departments the caller works for (`role@department[+department…]` in the token
    /// table; a manager may head several), a claim of the credential as an identity provider
    /// would give it. Handlers and department managers see and act within them; see
    /// [`crate::access`].
    pub departments: Vec<String>,
}

impl Identity {
    /// The actor to record on events this caller causes.
    pub fn to_actor(&self) -> redress_proto::v1::Actor {
        redress_proto::v1::Actor {
            id: self.actor_id.clone(),
            display_name: self.display_name.clone(),
            role: self.role.to_proto() as i32,
        }
    }
}

/// The token table, cheap to clone into every service.
#[derive(Clone, Debug, Default)]
pub struct Authenticator {
    tokens: Arc<HashMap<String, Identity>>,
}

/// A malformed token table.
#[derive(Debug, thiserror::Error)]
#[error("REDRESS_AUTH_TOKENS entry {entry:?}: {reason}")]
pub struct ConfigError {
    entry: String,
    reason: String,
}

impl Authenticator {
    /// Parses `token=actor_id:role[@department][:display name],…`.
    pub fn parse(spec: &str) -> Result<Self, ConfigError> {
        let mut tokens = HashMap::new();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let err = |reason: &str| ConfigError {
                entry: entry.to_owned(),
                reason: reason.to_owned(),
            };
            let (token, who) = entry
                .split_once('=')
                .ok_or_else(|| err("expected token=actor_id:role"))?;
            let mut parts = who.splitn(3, ':');
            let actor_id = parts.next().unwrap_or_default().trim();
            let (role, departments) = match parts.next().ok_or_else(|| err("missing role"))? {
                r if r.contains('@') => {
                    let (role, list) = r.split_once('@').unwrap_or((r, ""));
                    let departments: Vec<String> =
                        list.split('+').map(|d| d.trim().to_owned()).collect();
                    if departments.iter().any(String::is_empty) {
                        return Err(err("empty department after @ or +"));
                    }
                    (role, departments)
                }
                r => (r, Vec::new()),
            };
            let role = role.parse::<Role>().map_err(|e| err(&e))?;
            let display_name = parts.next().unwrap_or(actor_id).trim();
            if token.trim().len() < 8 {
                return Err(err("token must be at least 8 characters"));
            }
            if actor_id.is_empty() {
                return Err(err("empty actor id"));
            }
            tokens.insert(
                token.trim().to_owned(),
                Identity {
                    actor_id: actor_id.to_owned(),
                    display_name: display_name.to_owned(),
                    role,
                    departments,
                },
            );
        }
        Ok(Self {
            tokens: Arc::new(tokens),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    pub fn identify(&self, token: &str) -> Option<&Identity> {
        self.tokens.get(token)
    }
}

impl tonic::service::Interceptor for Authenticator {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        let header = req
            .metadata()
            .get("authorization")
            .ok_or_else(|| Status::unauthenticated("missing authorization: Bearer <token>"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .ok_or_else(|| Status::unauthenticated("authorization must be `Bearer <token>`"))?;
        let identity = self
            .identify(token.trim())
            .cloned()
            .ok_or_else(|| Status::unauthenticated("unknown token"))?;
        req.extensions_mut().insert(identity);
        Ok(req)
    }
}

/// The caller of a request that passed the [`Authenticator`].
pub fn identity<T>(req: &Request<T>) -> Result<Identity, Status> {
    req.extensions()
        .get::<Identity>()
        .cloned()
        .ok_or_else(|| Status::unauthenticated("no caller identity"))
}

/// Refuses the call unless the caller has one of `roles`.
pub fn require(identity: &Identity, roles: &[Role]) -> Result<(), Status> {
    if roles.contains(&identity.role) {
        Ok(())
    } else {
        Err(Status::permission_denied(format!(
            "role {} may not do this (allowed: {})",
            identity.role,
            roles
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::service::Interceptor;

    #[test]
    fn parses_token_table() {
        let a = Authenticator::parse(
            "secret-token-1=alice:handler@billing:Alice Wang, tok-tok-2=gm:general_manager,\
             tok-tok-3=bob:department_manager@billing+network",
        )
        .expect("valid");
        let alice = a.identify("secret-token-1").expect("alice");
        assert_eq!(alice.actor_id, "alice");
        assert_eq!(alice.display_name, "Alice Wang");
        assert_eq!(alice.role, Role::Handler);
        assert_eq!(alice.departments, ["billing"]);
        assert!(a.identify("tok-tok-2").expect("gm").departments.is_empty());
        assert_eq!(
            a.identify("tok-tok-3").expect("bob").departments,
            ["billing", "network"]
        );
        assert!(Authenticator::parse("long-enough=a:handler@").is_err());
        assert!(Authenticator::parse("long-enough=a:handler@x+").is_err());
        assert_eq!(
            a.identify("tok-tok-2").map(|i| i.role),
            Some(Role::GeneralManager)
        );
        assert!(Authenticator::parse("short=a:handler").is_err());
        assert!(Authenticator::parse("long-enough=a:pilot").is_err());
        assert!(Authenticator::parse("long-enough").is_err());
    }

    #[test]
    fn interceptor_refuses_unknown_and_missing_tokens() {
        let mut a = Authenticator::parse("secret-token-1=alice:handler").expect("valid");
        assert_eq!(
            a.call(Request::new(())).unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
        let mut bad = Request::new(());
        bad.metadata_mut()
            .insert("authorization", "Bearer nope".parse().unwrap());
        assert_eq!(
            a.call(bad).unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
        let mut good = Request::new(());
        good.metadata_mut()
            .insert("authorization", "Bearer secret-token-1".parse().unwrap());
        let req = a.call(good).expect("accepted");
        assert_eq!(identity(&req).expect("identity").actor_id, "alice");
    }
}
