//! The organisation file: departments, staff and routing rules as an operator writes them
//! (TOML), read by routing's seed (`REDRESS_ROUTING_SEED`) and by `redress org apply`, written
//! by `redress org export` — one format, so an export applies back unchanged.
//!
//! ```toml
//! default_department = "dept-network"   # with it, the rules below replace the current ones
//!
//! [[departments]]
//! id = "dept-network"
//! name = "Network Operations"
//! manager_id = "manager-1"
//!
//! [[staff]]
//! id = "handler-1"
//! name = "Liu Yang"
//! department_id = "dept-network"
//! role = "handler"          # department_manager, customer_service_agent, general_manager…
//!
//! [[rules]]
//! id = "broadband"
//! category = "network_quality"
//! department_id = "dept-network"
//! ```

use serde::{Deserialize, Serialize};

use crate::v1;

/// The whole file. Every section is optional; rules are replaced only when
/// `default_department` is given.
#[derive(Debug, Default, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OrgFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_department: Option<String>,
    #[serde(default)]
    pub departments: Vec<Department>,
    #[serde(default)]
    pub staff: Vec<Staff>,
    #[serde(default)]
    pub rules: Vec<Rule>,
}

#[derive(Debug, Default, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Department {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub manager_id: String,
    /// The complaint centre (DOMAIN §9: it owns complaints until they are routed).
    #[serde(default, skip_serializing_if = "is_false")]
    pub service_centre: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub acceptance_owner_id: String,
}

#[derive(Debug, Default, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Staff {
    pub id: String,
    pub name: String,
    pub department_id: String,
    /// `handler`, `department_manager`, `customer_service_agent`, `general_manager`,
    /// `service_centre_manager`…
    pub role: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub on_leave: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub phone: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub email: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub seniority: u32,
}

#[derive(Debug, Default, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub category: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub business: String,
    /// `hotline`, `counter`, … ; empty for any.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub channel: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub region: String,
    pub department_id: String,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// What is wrong with a file: where, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {reason}")]
pub struct OrgError {
    /// `line 12, column 8`, or the entry (`staff[2] (handler-9).role`).
    pub at: String,
    pub reason: String,
}

impl OrgFile {
    /// Reads the TOML text, naming the line of a syntax error and every entry that is wrong.
    pub fn parse(text: &str) -> Result<Self, Vec<OrgError>> {
        let file: OrgFile = toml::from_str(text).map_err(|e| {
            let at = e
                .span()
                .map(|s| {
                    let line = text[..s.start.min(text.len())].matches('\n').count() + 1;
                    format!("line {line}")
                })
                .unwrap_or_else(|| "the file".to_owned());
            vec![OrgError {
                at,
                reason: e.message().to_owned(),
            }]
        })?;
        let problems = file.check();
        if problems.is_empty() {
            Ok(file)
        } else {
            Err(problems)
        }
    }

    /// Every entry that cannot be applied, named.
    pub fn check(&self) -> Vec<OrgError> {
        let mut problems = Vec::new();
        let mut problem = |at: String, reason: &str| {
            problems.push(OrgError {
                at,
                reason: reason.to_owned(),
            })
        };
        let mut seen = std::collections::HashSet::new();
        for (i, d) in self.departments.iter().enumerate() {
            let at = |f: &str| format!("departments[{i}] ({}).{f}", d.id);
            if d.id.trim().is_empty() {
                problem(at("id"), "is required");
            } else if !seen.insert(("department", d.id.clone())) {
                problem(at("id"), "appears twice");
            }
            if d.name.trim().is_empty() {
                problem(at("name"), "is required");
            }
        }
        let known = |id: &str| self.departments.iter().any(|d| d.id == id);
        for (i, s) in self.staff.iter().enumerate() {
            let at = |f: &str| format!("staff[{i}] ({}).{f}", s.id);
            if s.id.trim().is_empty() {
                problem(at("id"), "is required");
            } else if !seen.insert(("staff", s.id.clone())) {
                problem(at("id"), "appears twice");
            }
            if s.name.trim().is_empty() {
                problem(at("name"), "is required");
            }
            if s.department_id.trim().is_empty() {
                problem(at("department_id"), "is required");
            }
            if role(&s.role).is_none() {
                problem(
                    at("role"),
                    &format!(
                        "{:?} is not a role (handler, department_manager, \
                         customer_service_agent, general_manager, service_centre_manager)",
                        s.role
                    ),
                );
            }
        }
        for (i, r) in self.rules.iter().enumerate() {
            let at = |f: &str| format!("rules[{i}] ({}).{f}", r.id);
            if r.id.trim().is_empty() {
                problem(at("id"), "is required");
            } else if !seen.insert(("rule", r.id.clone())) {
                problem(at("id"), "appears twice");
            }
            if r.department_id.trim().is_empty() {
                problem(at("department_id"), "is required");
            } else if !self.departments.is_empty() && !known(&r.department_id) {
                problem(at("department_id"), "names no department of this file");
            }
            if channel(&r.channel).is_none() {
                problem(at("channel"), &format!("{:?} is not a channel", r.channel));
            }
        }
        if !self.rules.is_empty() && self.default_department.is_none() {
            problem(
                "default_department".to_owned(),
                "is required with rules: it receives what no rule matches",
            );
        }
        problems
    }

    pub fn departments(&self) -> Vec<v1::Department> {
        self.departments
            .iter()
            .map(|d| v1::Department {
                id: d.id.clone(),
                name: d.name.clone(),
                manager_id: d.manager_id.clone(),
                service_centre: d.service_centre,
                acceptance_owner_id: d.acceptance_owner_id.clone(),
            })
            .collect()
    }

    /// Staff as routing stores them (checked first: an unknown role is `Unspecified`).
    pub fn staff(&self) -> Vec<v1::Staff> {
        self.staff
            .iter()
            .map(|s| v1::Staff {
                id: s.id.clone(),
                name: s.name.clone(),
                department_id: s.department_id.clone(),
                role: role(&s.role).unwrap_or_default(),
                on_leave: s.on_leave,
                phone: s.phone.clone(),
                email: s.email.clone(),
                seniority: s.seniority,
                suspended: false,
            })
            .collect()
    }

    pub fn rules(&self) -> Vec<v1::RoutingRule> {
        self.rules
            .iter()
            .map(|r| v1::RoutingRule {
                id: r.id.clone(),
                category: r.category.clone(),
                business: r.business.clone(),
                channel: channel(&r.channel).unwrap_or_default(),
                region: r.region.clone(),
                department_id: r.department_id.clone(),
            })
            .collect()
    }

    /// The organisation routing holds, as a file that applies back unchanged.
    pub fn from_parts(
        departments: &[v1::Department],
        staff: &[v1::Staff],
        rules: &v1::GetRoutingRulesResponse,
    ) -> Self {
        let lower = |name: &str, prefix: &str| {
            name.strip_prefix(prefix)
                .unwrap_or_default()
                .to_ascii_lowercase()
        };
        Self {
            default_department: Some(rules.default_department_id.clone()).filter(|d| !d.is_empty()),
            departments: departments
                .iter()
                .map(|d| Department {
                    id: d.id.clone(),
                    name: d.name.clone(),
                    manager_id: d.manager_id.clone(),
                    service_centre: d.service_centre,
                    acceptance_owner_id: d.acceptance_owner_id.clone(),
                })
                .collect(),
            staff: staff
                .iter()
                .map(|s| Staff {
                    id: s.id.clone(),
                    name: s.name.clone(),
                    department_id: s.department_id.clone(),
                    role: lower(s.role().as_str_name(), "ROLE_"),
                    on_leave: s.on_leave,
                    phone: s.phone.clone(),
                    email: s.email.clone(),
                    seniority: s.seniority,
                })
                .collect(),
            rules: rules
                .rules
                .iter()
                .map(|r| Rule {
                    id: r.id.clone(),
                    category: r.category.clone(),
                    business: r.business.clone(),
                    channel: if r.channel == 0 {
                        String::new()
                    } else {
                        lower(r.channel().as_str_name(), "CHANNEL_")
                    },
                    region: r.region.clone(),
                    department_id: r.department_id.clone(),
                })
                .collect(),
        }
    }

    /// The file as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }
}

/// A role by its file name (`handler`…), never `Unspecified`.
fn role(name: &str) -> Option<i32> {
    v1::Role::from_str_name(&format!("ROLE_{}", name.trim().to_ascii_uppercase()))
        .filter(|r| *r != v1::Role::Unspecified)
        .map(|r| r as i32)
}

/// A channel by its file name (`hotline`…); empty is any (0).
fn channel(name: &str) -> Option<i32> {
    if name.trim().is_empty() {
        return Some(0);
    }
    v1::Channel::from_str_name(&format!("CHANNEL_{}", name.trim().to_ascii_uppercase()))
        .filter(|c| *c != v1::Channel::Unspecified)
        .map(|c| c as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = include_str!("../../../deploy/demo/seed.toml");

    #[test]
    fn the_sample_organisation_reads_and_round_trips() {
        let file = OrgFile::parse(SAMPLE).expect("the sample organisation is valid");
        assert!(file.departments.iter().any(|d| d.service_centre));
        let back = OrgFile::parse(&file.to_toml()).expect("its export reads back");
        assert_eq!(back, file);
        let rules = v1::GetRoutingRulesResponse {
            rules: file.rules(),
            default_department_id: file.default_department.clone().unwrap_or_default(),
            ..Default::default()
        };
        assert_eq!(
            OrgFile::from_parts(&file.departments(), &file.staff(), &rules),
            file,
            "what routing would hold exports as the same file"
        );
    }

    #[test]
    fn every_bad_entry_is_named() {
        let errors = OrgFile::parse(
            r#"
[[departments]]
id = "d"
name = ""

[[staff]]
id = "h"
name = "H"
department_id = "d"
role = "pilot"

[[rules]]
id = "r"
department_id = "nowhere"
channel = "pigeon"
"#,
        )
        .expect_err("invalid");
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        for want in [
            "departments[0] (d).name: is required",
            "staff[0] (h).role",
            "rules[0] (r).department_id: names no department",
            "rules[0] (r).channel",
            "default_department: is required with rules",
        ] {
            assert!(text.iter().any(|t| t.contains(want)), "{want} in {text:?}");
        }
        let syntax = OrgFile::parse("[[staff]]\nid = \"x\"\nname = \n").expect_err("syntax");
        assert!(syntax[0].at.starts_with("line 3"), "{syntax:?}");
        let unknown = OrgFile::parse("[[staff]]\nid = \"x\"\nwage = 3\n").expect_err("unknown");
        assert!(unknown[0].reason.contains("wage"), "{unknown:?}");
    }
}
