//! Who may confirm and reclassify complaints, and who sees which complaints and how much of
//! their customer (docs/access.md). The gRPC door asks here before any command or read.

use redress_domain::ComplaintId;
use redress_platform::access::{self, Place, Reach, Sight};
use redress_platform::auth::{self, Identity, Role};
use redress_proto::v1;
use tonic::Status;

/// Who takes a complaint in: everyone who works on complaints or sends them (the call centre,
/// counters, departments that receive letters, integrations) — not the read-only viewer of a
/// wall screen or a dashboard.
pub const SUBMIT: &[Role] = &[
    Role::CustomerServiceAgent,
    Role::Integration,
    Role::Handler,
    Role::DepartmentManager,
    Role::GeneralManager,
    Role::Operator,
];

/// Who confirms a complaint with the customer, and which of them only for their department's
/// complaints (the complaint centre and the call centre confirm any).
pub const CONFIRM: Scope = Scope {
    roles: &[
        Role::CustomerServiceAgent,
        Role::Operator,
        Role::Integration,
        Role::Handler,
        Role::DepartmentManager,
    ],
    department_only: &[Role::Handler, Role::DepartmentManager],
};

/// Who overrides a class, and which of them only for their department's complaints.
pub const RECLASSIFY: Scope = Scope {
    roles: &[
        Role::CustomerServiceAgent,
        Role::DepartmentManager,
        Role::GeneralManager,
        Role::Operator,
    ],
    department_only: &[Role::DepartmentManager],
};

/// The roles a command allows, and those of them held to their own department.
pub struct Scope {
    pub roles: &'static [Role],
    pub department_only: &'static [Role],
}

impl Scope {
    /// Refuses a role the command does not allow.
    pub fn require_role(&self, who: &Identity) -> Result<(), Status> {
        auth::require(who, self.roles)
    }

    /// Whether `who` may act only on their department's complaints, so the complaint's place
    /// must be read before the command.
    pub fn department_only(&self, who: &Identity) -> bool {
        self.department_only.contains(&who.role)
    }
}

/// Refuses `who` on a complaint at `place` outside their department.
pub fn require_department(
    who: &Identity,
    place: Place<'_>,
    id: &ComplaintId,
) -> Result<(), Status> {
    if access::acts_for_department(who, place) {
        Ok(())
    } else {
        Err(access::outside(who, id.as_str()))
    }
}

/// Refuses a complaint outside the caller's reach.
pub fn may_see(who: &Identity, place: Place<'_>, id: &ComplaintId) -> Result<(), Status> {
    access::require_reach(who, place, id.as_str())
}

/// Masks the customer's personal data on a complaint where the caller may not see it.
pub fn mask_view(who: &Identity, view: &mut v1::ComplaintView) {
    let sight = Sight::of(who, Place::new(&view.department_id, &view.assignee_id));
    if let Some(customer) = view.details.as_mut().and_then(|d| d.customer.as_mut()) {
        sight.apply(customer);
    }
}

/// What the list may show the caller.
pub fn list_reach(who: &Identity) -> Reach {
    Reach::of(who)
}

/// Masks the customer's name on each listed complaint where the caller may not see it.
pub fn mask_summaries(who: &Identity, complaints: &mut [v1::ComplaintSummary]) {
    for c in complaints {
        let sight = Sight::of(who, Place::new(&c.department_id, &c.assignee_id));
        c.customer_name = sight.show(&c.customer_name);
    }
}
