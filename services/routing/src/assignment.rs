//! Who gets a complaint (issue 4, DOMAIN §2–3): the available handler of the department with
//! the least open load weighted by class, ties broken round robin (the one assigned longest
//! ago); a restrained-anger customer goes to the most senior available handler ("assign
//! someone more senior", DOMAIN §2). On-leave and suspended staff (DOMAIN §7) get nothing new.
//!
//! Concurrency: the choice is made under a transaction-scoped advisory lock per department, so
//! two replicas (or a batch and a command) assigning in one department take turns and each
//! sees the other's committed assignment — load stays balanced and nothing is counted twice.

use std::collections::HashMap;

use redress_domain::Class;
use sqlx::PgConnection;

use crate::store::assignment as store;

/// Weight of one open complaint of each class in a handler's load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Weights {
    pub a: i64,
    pub b: i64,
    pub c: i64,
    pub d: i64,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            a: 4,
            b: 3,
            c: 2,
            d: 1,
        }
    }
}

impl Weights {
    /// Parses `A=4,B=3,C=2,D=1` (classes not named keep their default).
    pub fn parse(spec: &str) -> anyhow::Result<Self> {
        let mut w = Weights::default();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (class, value) = part.split_once('=').ok_or_else(|| {
                anyhow::anyhow!("REDRESS_ROUTING_WEIGHTS: expected CLASS=N, got {part:?}")
            })?;
            let value: i64 = value
                .trim()
                .parse()
                .ok()
                .filter(|v| (1..=1000).contains(v))
                .ok_or_else(|| {
                    anyhow::anyhow!("REDRESS_ROUTING_WEIGHTS: {part:?}: weight must be 1..=1000")
                })?;
            match Class::parse(class.trim()) {
                Ok(Class::A) => w.a = value,
                Ok(Class::B) => w.b = value,
                Ok(Class::C) => w.c = value,
                Ok(Class::D) => w.d = value,
                Err(_) => anyhow::bail!("REDRESS_ROUTING_WEIGHTS: unknown class in {part:?}"),
            }
        }
        Ok(w)
    }
}

/// A handler who could take the complaint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub staff_id: String,
    pub name: String,
    pub load: i64,
    pub seniority: i32,
    /// Order of this person's latest automatic assignment (0 = never).
    pub last_assigned: i64,
}

/// The choice among available handlers: most senior first when `prefer_senior`, then least
/// load, then the one assigned longest ago, then by id (so the choice is deterministic).
pub fn choose(candidates: &[Candidate], prefer_senior: bool) -> Option<&Candidate> {
    candidates.iter().min_by(|x, y| {
        let senior = if prefer_senior {
            y.seniority.cmp(&x.seniority)
        } else {
            std::cmp::Ordering::Equal
        };
        senior
            .then(x.load.cmp(&y.load))
            .then(x.last_assigned.cmp(&y.last_assigned))
            .then(x.staff_id.cmp(&y.staff_id))
    })
}

/// Chooses and books a handler in the department: `None` when nobody is available.
pub async fn pick(
    conn: &mut PgConnection,
    department_id: &str,
    w: Weights,
    prefer_senior: bool,
) -> Result<Option<Candidate>, sqlx::Error> {
    store::lock_department(conn, department_id).await?;
    let all = store::candidates(conn, department_id, w).await?;
    let Some(chosen) = choose(&all, prefer_senior).cloned() else {
        return Ok(None);
    };
    store::book(conn, &chosen.staff_id).await?;
    Ok(Some(chosen))
}

/// Assignments for a whole consumer batch: every department involved locked once (in id order,
/// so two replicas never deadlock), its candidates read once, and each choice made in memory
/// with the load and the round-robin order updated as it goes — the same choices as
/// [`pick`] one complaint at a time, in a few statements for the batch.
pub struct Desk {
    weights: Weights,
    candidates: HashMap<String, Vec<Candidate>>,
    /// Values of `assignment_seq` reserved for this batch, handed out in order.
    order: std::vec::IntoIter<i64>,
    booked: HashMap<String, i64>,
}

impl Desk {
    /// Locks `departments` and reads their candidates; reserves `picks` round-robin numbers.
    pub async fn open(
        conn: &mut PgConnection,
        departments: &std::collections::BTreeSet<String>,
        w: Weights,
        picks: usize,
    ) -> Result<Self, sqlx::Error> {
        let mut candidates = HashMap::new();
        for dept in departments {
            store::lock_department(conn, dept).await?;
            candidates.insert(dept.clone(), store::candidates(conn, dept, w).await?);
        }
        let order = store::reserve_order(conn, picks).await?;
        Ok(Desk {
            weights: w,
            candidates,
            order: order.into_iter(),
            booked: HashMap::new(),
        })
    }

    /// Chooses a handler in `department` for a complaint of `class`: `None` when nobody is
    /// available.
    pub fn pick(
        &mut self,
        department: &str,
        class: Option<Class>,
        prefer_senior: bool,
    ) -> Option<Candidate> {
        let all = self.candidates.get_mut(department)?;
        let id = choose(all, prefer_senior)?.staff_id.clone();
        let order = self.order.next()?;
        let chosen = all.iter_mut().find(|c| c.staff_id == id)?;
        chosen.load += match class {
            Some(Class::A) => self.weights.a,
            Some(Class::B) => self.weights.b,
            Some(Class::C) => self.weights.c,
            Some(Class::D) | None => self.weights.d,
        };
        chosen.last_assigned = order;
        self.booked.insert(id, order);
        Some(chosen.clone())
    }

    /// Writes the round-robin order of everyone chosen (the loads follow the handling rows).
    pub async fn close(self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        if self.booked.is_empty() {
            return Ok(());
        }
        let (ids, order): (Vec<String>, Vec<i64>) = self.booked.into_iter().unzip();
        store::write_order(conn, ids, order).await
    }
}

/// Open weighted load per handler of a department (for tests and dashboards).
pub async fn loads(
    conn: &mut PgConnection,
    department_id: &str,
    w: Weights,
) -> Result<HashMap<String, i64>, sqlx::Error> {
    Ok(store::candidates(conn, department_id, w)
        .await?
        .into_iter()
        .map(|c| (c.staff_id, c.load))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(id: &str, load: i64, seniority: i32, last: i64) -> Candidate {
        Candidate {
            staff_id: id.into(),
            name: id.into(),
            load,
            seniority,
            last_assigned: last,
        }
    }

    #[test]
    fn least_load_wins_then_longest_ago() {
        let all = [c("a", 4, 0, 1), c("b", 2, 0, 5), c("c", 2, 0, 3)];
        assert_eq!(choose(&all, false).map(|c| c.staff_id.as_str()), Some("c"));
    }

    #[test]
    fn senior_preferred_for_restrained_anger() {
        let all = [c("a", 0, 1, 0), c("b", 9, 5, 0)];
        assert_eq!(choose(&all, true).map(|c| c.staff_id.as_str()), Some("b"));
        assert_eq!(choose(&all, false).map(|c| c.staff_id.as_str()), Some("a"));
    }

    #[test]
    fn nobody_available() {
        assert_eq!(choose(&[], false), None);
    }

    #[test]
    fn greedy_keeps_weighted_loads_within_one_complaint() {
        let w = Weights::default();
        let mut all: Vec<Candidate> = (0..7).map(|i| c(&format!("h{i}"), 0, 0, 0)).collect();
        for n in 0..1000i64 {
            let weight = [w.a, w.b, w.c, w.d][(n % 4) as usize];
            let id = choose(&all, false)
                .map(|c| c.staff_id.clone())
                .expect("someone");
            let who = all.iter_mut().find(|c| c.staff_id == id).expect("found");
            who.load += weight;
            who.last_assigned = n + 1;
        }
        let max = all.iter().map(|c| c.load).max().unwrap_or(0);
        let min = all.iter().map(|c| c.load).min().unwrap_or(0);
        assert!(max - min <= w.a, "{max} - {min}");
    }

    #[test]
    fn weights_parse() {
        assert_eq!(
            Weights::parse("A=4,B=3,C=2,D=1").ok(),
            Some(Weights::default())
        );
        assert_eq!(Weights::parse("A=10").map(|w| w.a).ok(), Some(10));
        assert!(Weights::parse("E=1").is_err());
        assert!(Weights::parse("A=0").is_err());
    }
}
