//! Who may see a complaint's clocks and who may excuse a missed limit (docs/access.md). Kept
//! apart from the handlers because a special reason cancels a fine: the rules on who grants
//! one are read and reviewed on their own.

use redress_domain::ComplaintId;
use redress_platform::access::{self, Place, Reach};
use redress_platform::auth::{self, Identity, Role};
use tonic::Status;

use crate::error::Error;

/// What the at-risk and overdue lists may show the caller.
pub fn list_reach(who: &Identity) -> Reach {
    Reach::of(who)
}

/// A complaint's clocks are shown to whoever's reach covers its place.
pub fn may_see(who: &Identity, place: Place<'_>, id: &ComplaintId) -> Result<(), Status> {
    access::require_reach(who, place, id.as_str())
}

/// Only managers record special reasons: an approved reason means no fine (DOMAIN §4).
pub fn may_record_special_reason(who: &Identity) -> Result<(), Status> {
    auth::require(who, &[Role::DepartmentManager, Role::GeneralManager])
}

/// A manager approves special reasons for their own department only.
pub fn may_approve_for(who: &Identity, place: Place<'_>, id: &ComplaintId) -> Result<(), Status> {
    if access::acts_for_department(who, place) {
        Ok(())
    } else {
        Err(access::outside(who, id.as_str()))
    }
}

/// The approver is the authenticated caller, never a name typed in (issue 17: a department
/// manager could record "approved by gm-1"). Left empty, it is the caller; naming anybody
/// else is refused.
pub fn approver<'a>(who: &'a Identity, named: &'a str) -> Result<&'a str, Error> {
    match named.trim() {
        "" => Ok(who.actor_id.as_str()),
        named if named == who.actor_id => Ok(named),
        _ => Err(Error::invalid(
            "approved_by",
            "must be the caller: a special reason is approved by whoever records it",
        )),
    }
}
