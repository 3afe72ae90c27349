//! Who may read the board and what they see: the same bearer tokens as the gRPC services,
//! the same reach (a department's staff see their department) and the same masking of the
//! customer (`redress_platform::access`).

use redress_platform::access::{Place, Reach, Sight};
use redress_platform::auth::{Authenticator, Identity, Role};

use crate::gateway::Frame;
use crate::store::Scope;

/// The token a request carries: `Authorization: Bearer …`, or `access_token=…` in the query
/// (a browser's `EventSource` cannot set headers).
pub fn token<'a>(header: Option<&'a str>, query: Option<&'a str>) -> Option<&'a str> {
    header
        .and_then(|h| h.strip_prefix("Bearer "))
        .or(query)
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// The caller, if the token is known.
pub fn identify(auth: &Authenticator, token: Option<&str>) -> Option<Identity> {
    auth.identify(token?).cloned()
}

/// The complaints `who` may see, as the store's filter.
pub fn scope(who: &Identity) -> Scope {
    match Reach::of(who) {
        Reach::All => Scope {
            all: true,
            departments: Vec::new(),
            actor: None,
        },
        Reach::Staff { departments, actor } => Scope {
            all: false,
            departments,
            actor: Some(actor),
        },
    }
}

/// Whose complaint rates `who` may see in the monthly analysis. A rate and its band set the
/// department head's penalty (DOMAIN §7): a figure for those who run or watch the centre, so a
/// handler sees none; a department manager sees their departments'.
pub fn rate_scope(who: &Identity) -> Option<Scope> {
    (who.role != Role::Handler).then(|| scope(who))
}

/// Whether `who` may see this event at all, and if so with the customer shown.
pub fn sight(who: &Identity, frame: &Frame) -> Option<Sight> {
    if frame.complaint_id.is_empty() {
        // Organisation events (departments, staff) carry no customer.
        return Some(Sight::Masked);
    }
    let place = Place::new(&frame.department, &frame.handler);
    Reach::of(who).covers(place).then(|| Sight::of(who, place))
}
