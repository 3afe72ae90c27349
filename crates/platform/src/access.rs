//! Who may see which complaint, and how much of its customer — the rules of `docs/access.md`,
//! written once for the five services.
//!
//! A caller's [`Identity`] carries a role and, for staff of a department, that department (a claim
//! of the credential). Two questions are answered here, both pure:
//!
//! - **Reach**: which complaints a caller sees at all. The general manager, the complaint centre
//!   (customer-service agents), operators and integrations see every complaint; a department
//!   manager and a handler see those of their own department, and any assigned to them. Outside
//!   their reach a complaint is refused (`PermissionDenied`), and lists leave it out.
//! - **Sight**: how much of the customer a caller sees within reach. The people who deal with the
//!   customer — the general manager, the complaint centre, the department's manager and the
//!   assigned handler — see name, phone, e-mail and account in full; everyone else (other
//!   handlers of the department, operators, integrations) sees them masked (`138****8000`).
//!
//! Writes check the same reach, and each service adds which roles may make which change.

use redress_domain::personal::mask;
use redress_proto::v1;
use tonic::Status;

use crate::auth::{Identity, Role};

/// Where a complaint stands, as far as access is concerned.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Place<'a> {
    /// The responsible department; `None` (or empty) before routing, while the complaint belongs
    /// to the complaint centre.
    pub department: Option<&'a str>,
    /// The handler assigned, if any.
    pub assignee: Option<&'a str>,
}

impl<'a> Place<'a> {
    pub fn new(department: &'a str, assignee: &'a str) -> Self {
        let some = |s: &'a str| Some(s).filter(|s| !s.is_empty());
        Self {
            department: some(department),
            assignee: some(assignee),
        }
    }
}

/// Which complaints a caller's reads cover.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reach {
    /// Every complaint.
    All,
    /// The complaints of the caller's departments, and any assigned to the caller (or
    /// escalations addressed to them). With no department in the credential, only the latter.
    Staff {
        departments: Vec<String>,
        actor: String,
    },
}

impl Reach {
    pub fn of(who: &Identity) -> Self {
        match who.role {
            Role::GeneralManager
            | Role::CustomerServiceAgent
            | Role::Operator
            | Role::Integration
            | Role::Viewer => Reach::All,
            Role::DepartmentManager | Role::Handler => Reach::Staff {
                departments: who.departments.clone(),
                actor: who.actor_id.clone(),
            },
        }
    }

    /// Whether a complaint at `place` is within reach.
    pub fn covers(&self, place: Place<'_>) -> bool {
        match self {
            Reach::All => true,
            Reach::Staff { departments, actor } => {
                place
                    .department
                    .is_some_and(|d| departments.iter().any(|m| m == d))
                    || place.assignee == Some(actor.as_str())
            }
        }
    }

    /// The three values of the SQL filter every list applies:
    /// `($all OR department_id = ANY($departments) OR assignee_id = $actor)`. A `None` binds
    /// SQL `NULL`, which matches nothing.
    pub fn sql(&self) -> (bool, &[String], Option<&str>) {
        match self {
            Reach::All => (true, &[], None),
            Reach::Staff { departments, actor } => {
                (false, departments.as_slice(), Some(actor.as_str()))
            }
        }
    }
}

/// How much of the customer a caller sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sight {
    Full,
    Masked,
}

impl Sight {
    /// The customer as `who` may see them on a complaint at `place` (which must be in reach).
    pub fn of(who: &Identity, place: Place<'_>) -> Self {
        let full = match who.role {
            Role::GeneralManager | Role::CustomerServiceAgent => true,
            Role::DepartmentManager => Reach::of(who).covers(place),
            Role::Handler => place.assignee == Some(who.actor_id.as_str()),
            Role::Operator | Role::Integration | Role::Viewer => false,
        };
        if full { Sight::Full } else { Sight::Masked }
    }

    /// One personal value (a name, a phone number) as this sight shows it.
    pub fn show(self, value: &str) -> String {
        match self {
            Sight::Full => value.to_owned(),
            Sight::Masked => mask(value),
        }
    }

    /// Masks a customer's personal fields in place when the sight is masked.
    pub fn apply(self, customer: &mut v1::Customer) {
        if self == Sight::Masked {
            for field in [
                &mut customer.name,
                &mut customer.phone,
                &mut customer.email,
                &mut customer.account,
            ] {
                *field = mask(field);
            }
        }
    }
}

/// Whether `who` acts for the complaint's own department: its manager, or a handler of it (or
/// the handler it is assigned to). The general manager acts for every department.
pub fn acts_for_department(who: &Identity, place: Place<'_>) -> bool {
    match who.role {
        Role::GeneralManager => true,
        Role::DepartmentManager | Role::Handler => Reach::of(who).covers(place),
        Role::CustomerServiceAgent | Role::Operator | Role::Integration | Role::Viewer => false,
    }
}

/// Refuses a complaint outside the caller's reach.
pub fn require_reach(who: &Identity, place: Place<'_>, complaint: &str) -> Result<(), Status> {
    if Reach::of(who).covers(place) {
        Ok(())
    } else {
        Err(outside(who, complaint))
    }
}

/// The refusal for a complaint outside the caller's department.
pub fn outside(who: &Identity, complaint: &str) -> Status {
    Status::permission_denied(format!(
        "{} ({}{}) may not see or act on complaint {complaint}: it is not in their department",
        who.actor_id,
        who.role,
        if who.departments.is_empty() {
            String::new()
        } else {
            format!(" of {}", who.departments.join(", "))
        }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(role: Role, department: Option<&str>) -> Identity {
        Identity {
            actor_id: "me".into(),
            display_name: "Me".into(),
            role,
            departments: department.into_iter().map(str::to_owned).collect(),
        }
    }

    const MINE: Place<'static> = Place {
        department: Some("billing"),
        assignee: Some("someone"),
    };
    const ASSIGNED: Place<'static> = Place {
        department: Some("billing"),
        assignee: Some("me"),
    };
    const OTHER: Place<'static> = Place {
        department: Some("network"),
        assignee: Some("someone"),
    };
    const UNROUTED: Place<'static> = Place {
        department: None,
        assignee: None,
    };

    /// The matrix of docs/access.md, row by row: (role, reach over mine, assigned, other,
    /// unrouted; sight on mine, assigned).
    #[test]
    fn reach_and_sight_follow_the_matrix() {
        use Sight::{Full, Masked};
        let rows = [
            (Role::GeneralManager, [true, true, true, true], [Full, Full]),
            (
                Role::CustomerServiceAgent,
                [true, true, true, true],
                [Full, Full],
            ),
            (Role::Operator, [true, true, true, true], [Masked, Masked]),
            (
                Role::Integration,
                [true, true, true, true],
                [Masked, Masked],
            ),
            (
                Role::DepartmentManager,
                [true, true, false, false],
                [Full, Full],
            ),
            (Role::Handler, [true, true, false, false], [Masked, Full]),
        ];
        for (role, reach, sight) in rows {
            let w = who(role, Some("billing"));
            let r = Reach::of(&w);
            let got = [MINE, ASSIGNED, OTHER, UNROUTED].map(|p| r.covers(p));
            assert_eq!(got, reach, "{role} reach");
            assert_eq!(
                [MINE, ASSIGNED].map(|p| Sight::of(&w, p)),
                sight,
                "{role} sight"
            );
        }
    }

    #[test]
    fn staff_without_a_department_reach_only_their_own() {
        for role in [Role::Handler, Role::DepartmentManager] {
            let r = Reach::of(&who(role, None));
            assert!(!r.covers(MINE), "{role}");
            assert!(r.covers(ASSIGNED), "{role}");
            assert_eq!(r.sql(), (false, &[][..], Some("me")));
        }
    }

    #[test]
    fn masking_covers_every_personal_field() {
        let mut c = v1::Customer {
            name: "王小芳".into(),
            phone: "13800138000".into(),
            email: "wang.fang@example.com".into(),
            account: "ACC-778899".into(),
            ..Default::default()
        };
        Sight::Masked.apply(&mut c);
        for (got, secret) in [
            (&c.name, "王小芳"),
            (&c.phone, "13800138000"),
            (&c.email, "wang.fang@example.com"),
            (&c.account, "ACC-778899"),
        ] {
            assert_ne!(got, secret);
            assert!(got.contains('*'), "{got}");
        }
    }

    #[test]
    fn only_the_department_acts_for_it() {
        assert!(acts_for_department(
            &who(Role::DepartmentManager, Some("billing")),
            MINE
        ));
        assert!(!acts_for_department(
            &who(Role::DepartmentManager, Some("billing")),
            OTHER
        ));
        assert!(!acts_for_department(&who(Role::Operator, None), MINE));
        assert!(acts_for_department(&who(Role::GeneralManager, None), OTHER));
    }
}
