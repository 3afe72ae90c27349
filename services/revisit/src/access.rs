//! Who may do what with revisits (docs/access.md): agents make the calls, the department's
//! manager signs the sheet, the people who serve on site record it; the work list shows each
//! caller their reach, with the customer masked where they may not see them. The gRPC door
//! and the commands ask here.

use redress_platform::access::{Place, Reach, Sight};
use redress_platform::auth::{self, Identity, Role};
use redress_proto::v1;
use tonic::Status;

use crate::error::Error;
use crate::store::Locked;

/// Who makes revisits.
const AGENTS: &[Role] = &[Role::CustomerServiceAgent, Role::Operator];

/// Claiming a revisit and recording its outcome are agents' work.
pub fn may_make_revisits(who: &Identity) -> Result<(), Status> {
    auth::require(who, AGENTS)
}

/// Managers sign revisit sheets.
pub fn may_sign_off(who: &Identity) -> Result<(), Status> {
    auth::require(who, &[Role::DepartmentManager, Role::GeneralManager])
}

/// A manager signs for themselves: a `manager_id` naming anybody else is refused.
pub fn signer(who: &Identity, manager_id: &str) -> Result<(), Error> {
    if !manager_id.is_empty() && manager_id != who.actor_id {
        return Err(Error::invalid(
            "manager_id",
            "managers sign for themselves only",
        ));
    }
    Ok(())
}

/// On-site service is recorded by whoever served or coordinates it.
pub fn may_record_on_site(who: &Identity) -> Result<(), Status> {
    auth::require(
        who,
        &[
            Role::CustomerServiceAgent,
            Role::Handler,
            Role::DepartmentManager,
            Role::Operator,
            Role::Integration,
        ],
    )
}

/// Only the agent who claimed a revisit records its outcome.
pub fn may_record_outcome(r: &Locked, id: &str, actor: &v1::Actor) -> Result<(), Error> {
    if r.agent_id.as_deref() != Some(actor.id.as_str()) {
        return Err(Error::PermissionDenied(format!(
            "revisit {id} is claimed by another agent"
        )));
    }
    Ok(())
}

/// The sheet is signed by the department's manager (`manager`, empty when not known), unless
/// the signer may sign any (the general manager).
pub fn may_sign(manager: &str, actor: &v1::Actor, may_sign_any: bool) -> Result<(), Error> {
    if !may_sign_any && !manager.is_empty() && manager != actor.id {
        return Err(Error::PermissionDenied(format!(
            "only the department's manager ({manager}) signs this revisit sheet"
        )));
    }
    Ok(())
}

/// What the work list may show the caller.
pub fn list_reach(who: &Identity) -> Reach {
    Reach::of(who)
}

/// Masks the customer on each revisit the caller may not see them on.
pub fn mask_customers(who: &Identity, revisits: &mut [v1::Revisit]) {
    for r in revisits {
        let sight = Sight::of(who, Place::new(&r.department_id, &r.agent_id));
        r.customer_name = sight.show(&r.customer_name);
        r.customer_phone = sight.show(&r.customer_phone);
    }
}
