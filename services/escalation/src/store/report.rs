//! The monthly tallies the complaint analysis is computed from (DOMAIN §7, §8). Each tally is a
//! query of its own, counted on the table that records it, rather than one join that would
//! multiply rows.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, Row};

/// One department's month.
#[derive(Default)]
pub struct DepartmentMonth {
    pub name: String,
    pub complaints: i64,
    pub volume: i64,
    pub overdue: i64,
    pub escalations: i64,
    pub repeats: i64,
}

/// What a tally's query binds: the month's text (`$1`), or its instants (`$1`, `$2`).
#[derive(Clone, Copy)]
enum By {
    Month,
    Instants,
}

/// One tally: the query giving `(department, count)` rows, what it binds, and the column it
/// fills.
type Tally = (&'static str, By, fn(&mut DepartmentMonth, i64));

/// The tallies of a department's month.
const TALLIES: [Tally; 5] = [
    (
        "SELECT department_id, count(*) FROM complaints
         WHERE received_at >= $1 AND received_at < $2
           AND department_id <> '' GROUP BY 1",
        By::Instants,
        |d, n| d.complaints = n,
    ),
    (
        "SELECT department_id, volume FROM business_volumes
         WHERE month = $1",
        By::Month,
        |d, n| d.volume = n,
    ),
    (
        "SELECT department_id, count(*) FROM overdues
         WHERE month = $1
           AND department_id <> '' GROUP BY 1",
        By::Month,
        |d, n| d.overdue = n,
    ),
    (
        "SELECT department_id, count(*) FROM escalations
         WHERE raised_at >= $1 AND raised_at < $2
           AND department_id <> '' GROUP BY 1",
        By::Instants,
        |d, n| d.escalations = n,
    ),
    (
        "SELECT department_id, count(*) FROM repeats
         WHERE month = $1
           AND department_id <> '' GROUP BY 1",
        By::Month,
        |d, n| d.repeats = n,
    ),
];

/// Every department with anything to report in `month` (`YYYY-MM`, spanning `bounds`), by id.
pub async fn departments(
    conn: &mut PgConnection,
    month: &str,
    bounds: (DateTime<Utc>, DateTime<Utc>),
) -> sqlx::Result<BTreeMap<String, DepartmentMonth>> {
    let mut depts: BTreeMap<String, DepartmentMonth> = BTreeMap::new();
    for (sql, by, set) in TALLIES {
        let q = sqlx::query(sql);
        let q = match by {
            By::Month => q.bind(month.to_owned()),
            By::Instants => q.bind(bounds.0).bind(bounds.1),
        };
        for r in q.fetch_all(&mut *conn).await? {
            let d: String = r.try_get(0)?;
            let n: i64 = r.try_get(1)?;
            set(depts.entry(d).or_default(), n);
        }
    }
    for r in sqlx::query("SELECT department_id, name FROM departments")
        .fetch_all(&mut *conn)
        .await?
    {
        let id: String = r.try_get(0)?;
        if let Some(d) = depts.get_mut(&id) {
            d.name = r.try_get(1)?;
        }
    }
    Ok(depts)
}

/// One person's month in the ledger.
pub struct PersonMonth {
    pub person_id: String,
    pub name: String,
    pub department_id: String,
    /// Entries that count toward a suspension.
    pub complaints: i64,
    pub penalties_fen: i64,
    pub suspended: bool,
}

/// Everyone with a ledger entry in `month`, by id.
pub async fn people(conn: &mut PgConnection, month: &str) -> sqlx::Result<Vec<PersonMonth>> {
    sqlx::query(
        "SELECT l.person_id, COALESCE(max(s.name), '') AS name,
                COALESCE(max(s.department_id), max(l.department_id)) AS department_id,
                count(*) FILTER (WHERE l.counts) AS complaints,
                sum(l.amount_fen)::BIGINT AS penalties,
                bool_or(pm.suspended_at IS NOT NULL) AS suspended
         FROM ledger_entries l
         LEFT JOIN staff s ON s.staff_id = l.person_id
         LEFT JOIN person_months pm ON pm.person_id = l.person_id AND pm.month = l.month
         WHERE l.month = $1
         GROUP BY l.person_id ORDER BY l.person_id",
    )
    .bind(month)
    .fetch_all(conn)
    .await?
    .iter()
    .map(|r| {
        Ok(PersonMonth {
            person_id: r.try_get("person_id")?,
            name: r.try_get("name")?,
            department_id: r.try_get("department_id")?,
            complaints: r.try_get("complaints")?,
            penalties_fen: r.try_get("penalties")?,
            suspended: r.try_get::<Option<bool>, _>("suspended")?.unwrap_or(false),
        })
    })
    .collect()
}
