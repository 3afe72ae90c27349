//! Who may act on a complaint in routing (docs/access.md): "a handler acts only on complaints
//! assigned to them, a manager on their department's"; the general manager on all;
//! customer-service agents where the centre coordinates (DOMAIN §3); the complaint centre
//! closes. The gRPC door asks here before any command; the organisation's data comes from
//! [`crate::store::organisation`], so the decisions read without SQL.

use redress_platform::access::{Place, Reach};
use redress_platform::auth::{Identity, Role};
use sqlx::PgConnection;

use crate::commands::Record;
use crate::error::Error;
use crate::store::organisation as store;

/// Who may act on a complaint, besides the general manager.
#[derive(Clone, Copy)]
pub struct Allow {
    /// The assigned handler.
    pub assignee: bool,
    /// The manager of the responsible department.
    pub manager: bool,
    /// Customer-service agents.
    pub agent: bool,
}

/// The handling commands: the handler and the department's manager.
pub const HANDLING: Allow = Allow {
    assignee: true,
    manager: true,
    agent: false,
};
/// What the complaint centre coordinates too (reroute, feedback, the customer's answer).
pub const CENTRE: Allow = Allow {
    assignee: true,
    manager: true,
    agent: true,
};
/// The department manager's decisions.
pub const MANAGER: Allow = Allow {
    assignee: false,
    manager: true,
    agent: false,
};

/// Whether `who` may act on `rec` as `allow` says; refused naming the person and the complaint.
pub async fn authorize(
    conn: &mut PgConnection,
    who: &Identity,
    rec: &Record,
    allow: Allow,
) -> Result<(), Error> {
    // Staff act within the departments their credential names (docs/access.md), and the
    // organisation must agree that a manager manages the complaint's department.
    let in_reach = Reach::of(who).covers(Place::new(&rec.department_id, &rec.assignee_id));
    let ok = match who.role {
        Role::GeneralManager => true,
        Role::Handler | Role::DepartmentManager if !in_reach => false,
        Role::Handler => allow.assignee && rec.assignee_id == who.actor_id,
        Role::DepartmentManager => {
            (allow.manager && store::manages(conn, &who.actor_id, &rec.department_id).await?)
                || (allow.assignee && rec.assignee_id == who.actor_id)
        }
        Role::CustomerServiceAgent => allow.agent,
        Role::Integration | Role::Operator | Role::Viewer => false,
    };
    if ok {
        Ok(())
    } else {
        Err(Error::PermissionDenied(format!(
            "{} ({}) may not act on complaint {}",
            who.actor_id, who.role, rec.complaint_id
        )))
    }
}

/// DOMAIN §9 "Closing": the complaint centre closes a complaint explicitly — the general
/// manager, an operator, the manager of the customer-service centre, or the manager of the
/// complaint's own department. Handlers and agents do not: closing archives the complaint.
pub async fn may_close(conn: &mut PgConnection, who: &Identity, rec: &Record) -> Result<(), Error> {
    let ok = match who.role {
        Role::GeneralManager | Role::Operator => true,
        Role::DepartmentManager => {
            store::manages(conn, &who.actor_id, &rec.department_id).await?
                || store::manages_service_centre(conn, &who.actor_id).await?
        }
        Role::Handler | Role::CustomerServiceAgent | Role::Integration | Role::Viewer => false,
    };
    if ok {
        Ok(())
    } else {
        Err(Error::PermissionDenied(format!(
            "{} ({}) may not close complaint {}: the complaint centre closes complaints",
            who.actor_id, who.role, rec.complaint_id
        )))
    }
}

/// Who may complete a department's share of a complaint: its owner or the manager of its
/// department — who need not otherwise reach the complaint, since the share is theirs — or
/// whoever may act on the complaint as the centre coordinates it.
pub async fn may_complete_share(
    conn: &mut PgConnection,
    who: &Identity,
    rec: &Record,
    share_department: &str,
    share_owner: &str,
) -> Result<(), Error> {
    let own = share_owner == who.actor_id
        || (who.role == Role::DepartmentManager
            && store::manages(conn, &who.actor_id, share_department).await?);
    if own {
        Ok(())
    } else {
        authorize(conn, who, rec, CENTRE).await
    }
}
