//! Who may do what with escalations, the ledger and its reports (docs/access.md; DOMAIN §5, §7,
//! §9), in one place so the gRPC door asks before it reads or writes and no rule hides among
//! the SQL.

use redress_domain::ComplaintId;
use redress_platform::access::{self, Place, Reach};
use redress_platform::auth::{self, Identity, Role};
use tonic::Status;

use crate::error::Error;
use crate::store::escalations::Escalation;

/// Anyone may list escalations, but a list shows only those in the caller's reach: their
/// departments' and those addressed to them, or all of them for the roles that see everything.
pub fn listing(who: &Identity) -> Reach {
    Reach::of(who)
}

/// The recipient acts on their own escalation (acknowledges, decides); the general manager, who
/// gives the final decision (DOMAIN §5), on any. Operators administer the system and decide
/// nothing.
pub fn may_act(who: &Identity, e: &Escalation) -> Result<(), Error> {
    if who.actor_id == e.recipient_id || who.role == Role::GeneralManager {
        Ok(())
    } else {
        Err(Error::PermissionDenied(format!(
            "escalation {} is addressed to {}",
            e.escalation_id, e.recipient_id
        )))
    }
}

/// The business volume a complaint rate divides by is a figure the company states, not a
/// department's own claim: operators and the general manager set it.
pub fn may_set_business_volume(who: &Identity) -> Result<(), Status> {
    auth::require(who, &[Role::Operator, Role::GeneralManager])
}

/// The monthly report names fines and suspensions of people: the general manager and operators
/// see every department; a department manager reports on their own departments, one at a time
/// (`department` must be one of theirs).
pub fn may_report(who: &Identity, department: &str) -> Result<(), Status> {
    auth::require(
        who,
        &[
            Role::Operator,
            Role::GeneralManager,
            Role::DepartmentManager,
        ],
    )?;
    if who.role == Role::DepartmentManager && !who.departments.iter().any(|d| d == department) {
        return Err(Status::permission_denied(format!(
            "{} reports on their own departments only ({}): give department_id",
            who.actor_id,
            who.departments.join(", ")
        )));
    }
    Ok(())
}

/// DOMAIN §9: doubling without a missed limit is "a manager's finding of neglect": department
/// managers and the general manager record one.
pub fn may_find_neglect(who: &Identity) -> Result<(), Status> {
    auth::require(who, &[Role::DepartmentManager, Role::GeneralManager])
}

/// A neglect finding about `original` falls on the department its repeat complaint was
/// recorded in: the manager must act for that department.
pub fn may_find_neglect_in(
    who: &Identity,
    department: &str,
    original: &ComplaintId,
) -> Result<(), Status> {
    if access::acts_for_department(who, Place::new(department, "")) {
        Ok(())
    } else {
        Err(access::outside(who, original.as_str()))
    }
}
