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
use sqlx::{PgConnection, Row};

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

/// Takes the department's assignment lock until the transaction ends.
pub async fn lock_department(
    conn: &mut PgConnection,
    department_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('routing-dept:' || $1))")
        .bind(department_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// The available handlers of a department with their open weighted load, read from the
/// per-class counters the database keeps with every handling row (migration
/// `handler_load`): a few rows per handler, however many complaints are open. Call under
/// [`lock_department`].
pub async fn candidates(
    conn: &mut PgConnection,
    department_id: &str,
    w: Weights,
) -> Result<Vec<Candidate>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT s.staff_id, s.name, s.seniority, s.last_assigned,
            COALESCE((SELECT SUM(l.open_count
                        * CASE l.class WHEN 'A' THEN $2 WHEN 'B' THEN $3 WHEN 'C' THEN $4 ELSE $5 END)
                      FROM handler_load l WHERE l.staff_id = s.staff_id), 0)::BIGINT AS load
         FROM staff s
         WHERE s.department_id = $1 AND s.role = $6 AND NOT s.on_leave AND NOT s.suspended",
    )
    .bind(department_id)
    .bind(w.a)
    .bind(w.b)
    .bind(w.c)
    .bind(w.d)
    .bind(redress_proto::v1::Role::Handler as i32)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Candidate {
                staff_id: r.try_get("staff_id")?,
                name: r.try_get("name")?,
                load: r.try_get("load")?,
                seniority: r.try_get("seniority")?,
                last_assigned: r.try_get("last_assigned")?,
            })
        })
        .collect()
}

/// Chooses and books a handler in the department: `None` when nobody is available.
pub async fn pick(
    conn: &mut PgConnection,
    department_id: &str,
    w: Weights,
    prefer_senior: bool,
) -> Result<Option<Candidate>, sqlx::Error> {
    lock_department(conn, department_id).await?;
    let all = candidates(conn, department_id, w).await?;
    let Some(chosen) = choose(&all, prefer_senior).cloned() else {
        return Ok(None);
    };
    sqlx::query("UPDATE staff SET last_assigned = nextval('assignment_seq') WHERE staff_id = $1")
        .bind(&chosen.staff_id)
        .execute(conn)
        .await?;
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
            lock_department(conn, dept).await?;
            candidates.insert(dept.clone(), self::candidates(conn, dept, w).await?);
        }
        let order: Vec<i64> = sqlx::query_scalar(
            "SELECT nextval('assignment_seq') FROM generate_series(1, $1::int) ORDER BY 1",
        )
        .bind(i32::try_from(picks).unwrap_or(i32::MAX))
        .fetch_all(conn)
        .await?;
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
        sqlx::query(
            "UPDATE staff s SET last_assigned = b.n
             FROM UNNEST($1::text[], $2::bigint[]) AS b(staff_id, n)
             WHERE s.staff_id = b.staff_id",
        )
        .bind(ids)
        .bind(order)
        .execute(conn)
        .await?;
        Ok(())
    }
}

/// Open weighted load per handler of a department (for tests and dashboards).
pub async fn loads(
    conn: &mut PgConnection,
    department_id: &str,
    w: Weights,
) -> Result<HashMap<String, i64>, sqlx::Error> {
    Ok(candidates(conn, department_id, w)
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
