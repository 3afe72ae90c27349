//! What the service knows of complaints and the organisation, learnt from other services'
//! events: enough to name a recipient, date a complaint for the ledger and find who pays.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use redress_domain::ComplaintId;
use redress_proto::v1;
use sqlx::{PgConnection, Row};

/// Facts about a complaint an event carries; empty / 0 / `None` means "not said", so a later
/// event never erases what an earlier one said.
#[derive(Default)]
pub struct Facts<'a> {
    pub number: &'a str,
    pub class: i32,
    pub department_id: &'a str,
    pub department_manager_id: &'a str,
    pub assignee_id: &'a str,
    pub responsible_person_id: &'a str,
    pub resolved: Option<bool>,
    pub closed: Option<bool>,
    pub customer_type: i32,
}

/// Records what `f` says of the complaint.
pub async fn note(conn: &mut PgConnection, id: &ComplaintId, f: &Facts<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO complaints (complaint_id, number, class, department_id,
            department_manager_id, assignee_id, responsible_person_id, resolved, closed,
            customer_type)
         VALUES ($1, $2, $3, $4, $5, $6, $7, COALESCE($8, false), COALESCE($9, false), $10)
         ON CONFLICT (complaint_id) DO UPDATE SET
            customer_type = CASE WHEN EXCLUDED.customer_type <> 0 THEN EXCLUDED.customer_type
                ELSE complaints.customer_type END,
            number = COALESCE(NULLIF(EXCLUDED.number, ''), complaints.number),
            class = CASE WHEN EXCLUDED.class <> 0 THEN EXCLUDED.class ELSE complaints.class END,
            department_id = COALESCE(NULLIF(EXCLUDED.department_id, ''), complaints.department_id),
            department_manager_id = COALESCE(NULLIF(EXCLUDED.department_manager_id, ''),
                complaints.department_manager_id),
            assignee_id = COALESCE(NULLIF(EXCLUDED.assignee_id, ''), complaints.assignee_id),
            responsible_person_id = COALESCE(NULLIF(EXCLUDED.responsible_person_id, ''),
                complaints.responsible_person_id),
            resolved = COALESCE($8, complaints.resolved),
            closed = COALESCE($9, complaints.closed)",
    )
    .bind(id.as_str())
    .bind(f.number)
    .bind(f.class)
    .bind(f.department_id)
    .bind(f.department_manager_id)
    .bind(f.assignee_id)
    .bind(f.responsible_person_id)
    .bind(f.resolved)
    .bind(f.closed)
    .bind(f.customer_type)
    .execute(conn)
    .await?;
    Ok(())
}

/// The facts of several events about one complaint folded in order, as [`note`] records them
/// one after the other, with the complaint's date as the ledger keeps it. The folding itself is
/// the consumer's; this is what one row of a run stores.
pub struct Folded {
    pub complaint_id: ComplaintId,
    /// Whether any event of the run said something [`note`] would record.
    pub noted: bool,
    pub number: String,
    pub class: i32,
    pub department_id: String,
    pub department_manager_id: String,
    pub assignee_id: String,
    pub customer_type: i32,
    /// The last receipt's time (a receipt dates the complaint).
    pub received_at: Option<DateTime<Utc>>,
    /// The first event's time (dates it while no receipt has).
    pub first_at: Option<DateTime<Utc>>,
}

impl Folded {
    /// Nothing said yet about `complaint_id`.
    pub fn new(complaint_id: ComplaintId) -> Self {
        Folded {
            complaint_id,
            noted: false,
            number: String::new(),
            class: 0,
            department_id: String::new(),
            department_manager_id: String::new(),
            assignee_id: String::new(),
            customer_type: 0,
            received_at: None,
            first_at: None,
        }
    }

    fn id(&self) -> &str {
        self.complaint_id.as_str()
    }
}

/// One column of a run, for `UNNEST`.
fn column<'a, T>(rows: &[&'a Folded], f: impl Fn(&'a Folded) -> T) -> Vec<T> {
    rows.iter().map(|r| f(r)).collect()
}

/// Records a run's folded facts in one statement and dates each complaint in another, with the
/// outcome of [`note`] and the ledger's dating applied one event at a time. `rows` must be in
/// complaint-id order: every writer of several rows locks them in that order, so replicas never
/// deadlock.
pub async fn note_run(conn: &mut PgConnection, rows: &[Folded]) -> sqlx::Result<()> {
    let all: Vec<&Folded> = rows.iter().collect();
    let noted: Vec<&Folded> = rows.iter().filter(|f| f.noted).collect();
    if !noted.is_empty() {
        sqlx::query(
            "INSERT INTO complaints AS c (complaint_id, number, class, department_id,
                department_manager_id, assignee_id, customer_type)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::int[], $4::text[], $5::text[],
                $6::text[], $7::int[])
             ON CONFLICT (complaint_id) DO UPDATE SET
                customer_type = CASE WHEN EXCLUDED.customer_type <> 0
                    THEN EXCLUDED.customer_type ELSE c.customer_type END,
                number = COALESCE(NULLIF(EXCLUDED.number, ''), c.number),
                class = CASE WHEN EXCLUDED.class <> 0 THEN EXCLUDED.class ELSE c.class END,
                department_id = COALESCE(NULLIF(EXCLUDED.department_id, ''), c.department_id),
                department_manager_id = COALESCE(NULLIF(EXCLUDED.department_manager_id, ''),
                    c.department_manager_id),
                assignee_id = COALESCE(NULLIF(EXCLUDED.assignee_id, ''), c.assignee_id)",
        )
        .bind(column(&noted, Folded::id))
        .bind(column(&noted, |f| f.number.as_str()))
        .bind(column(&noted, |f| f.class))
        .bind(column(&noted, |f| f.department_id.as_str()))
        .bind(column(&noted, |f| f.department_manager_id.as_str()))
        .bind(column(&noted, |f| f.assignee_id.as_str()))
        .bind(column(&noted, |f| f.customer_type))
        .execute(&mut *conn)
        .await?;
    }
    // The ledger's date of each complaint: its receipt, else the first event seen.
    sqlx::query(
        "UPDATE complaints c SET received_at = COALESCE(r.received_at, c.received_at, r.first_at)
         FROM UNNEST($1::text[], $2::timestamptz[], $3::timestamptz[])
            AS r(complaint_id, received_at, first_at)
         WHERE c.complaint_id = r.complaint_id",
    )
    .bind(column(&all, Folded::id))
    .bind(column(&all, |f| f.received_at))
    .bind(column(&all, |f| f.first_at))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// What a cause or a step needs to know of a complaint already seen.
#[derive(sqlx::FromRow)]
pub struct Known {
    pub number: String,
    /// Proto value; 0 while unclassified.
    pub class: i32,
    pub department_id: String,
    /// Proto value; 0 while not said.
    pub customer_type: i32,
}

/// The complaint as far as it is known, `None` before any event about it.
pub async fn known(conn: &mut PgConnection, id: &ComplaintId) -> sqlx::Result<Option<Known>> {
    sqlx::query_as::<_, Known>(
        "SELECT number, class, department_id, customer_type FROM complaints
         WHERE complaint_id = $1",
    )
    .bind(id.as_str())
    .fetch_optional(conn)
    .await
}

/// The customer type (proto value) of each of `ids` already seen.
pub async fn customer_types(
    conn: &mut PgConnection,
    ids: &[&ComplaintId],
) -> sqlx::Result<HashMap<ComplaintId, i32>> {
    let raw: Vec<&str> = ids.iter().map(|id| id.as_str()).collect();
    sqlx::query("SELECT complaint_id, customer_type FROM complaints WHERE complaint_id = ANY($1)")
        .bind(&raw)
        .fetch_all(conn)
        .await?
        .iter()
        .map(|r| {
            Ok((
                super::complaint_id(r, "complaint_id")?,
                r.try_get("customer_type")?,
            ))
        })
        .collect()
}

/// Routing's `department.upserted`, as it says.
pub async fn upsert_department(
    conn: &mut PgConnection,
    d: &v1::DepartmentUpserted,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO departments (department_id, name, manager_id, service_centre)
         VALUES ($1, $2, $3, $4) ON CONFLICT (department_id) DO UPDATE SET
            name = EXCLUDED.name, manager_id = EXCLUDED.manager_id,
            service_centre = EXCLUDED.service_centre",
    )
    .bind(&d.department_id)
    .bind(&d.name)
    .bind(&d.manager_id)
    .bind(d.service_centre)
    .execute(conn)
    .await?;
    Ok(())
}

/// Routing's `staff.upserted`, as it says; `updated_at` orders who was named last.
pub async fn upsert_staff(conn: &mut PgConnection, s: &v1::StaffUpserted) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO staff (staff_id, name, department_id, role, phone, email,
            on_leave, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, now())
         ON CONFLICT (staff_id) DO UPDATE SET name = EXCLUDED.name,
            department_id = EXCLUDED.department_id, role = EXCLUDED.role,
            phone = EXCLUDED.phone, email = EXCLUDED.email,
            on_leave = EXCLUDED.on_leave, updated_at = now()",
    )
    .bind(&s.staff_id)
    .bind(&s.name)
    .bind(&s.department_id)
    .bind(s.role)
    .bind(&s.phone)
    .bind(&s.email)
    .bind(s.on_leave)
    .execute(conn)
    .await?;
    Ok(())
}

/// The complaint's department manager (named on the complaint, else the department's, `department`
/// when given else the complaint's); before routing — no department yet — the complaint centre's
/// manager: unconfirmed complaints belong to the centre (DOMAIN §9).
pub async fn department_manager(
    conn: &mut PgConnection,
    id: &ComplaintId,
    department: &str,
) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar(
        "SELECT COALESCE(NULLIF(c.department_manager_id, ''),
            NULLIF(d.manager_id, ''),
            CASE WHEN COALESCE(NULLIF($2, ''), c.department_id, '') = '' THEN
                (SELECT manager_id FROM departments
                 WHERE service_centre AND manager_id <> ''
                 ORDER BY department_id LIMIT 1)
            END)
         FROM (SELECT $1::text AS complaint_id) k
         LEFT JOIN complaints c ON c.complaint_id = k.complaint_id
         LEFT JOIN departments d ON d.department_id =
             COALESCE(NULLIF($2, ''), c.department_id)",
    )
    .bind(id.as_str())
    .bind(department)
    .fetch_one(conn)
    .await
}

/// The staff member routing named last with `role` (proto value) who is not on leave.
pub async fn latest_with_role(
    conn: &mut PgConnection,
    role: v1::Role,
) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar(
        "SELECT staff_id FROM staff WHERE role = $1 AND NOT on_leave
         ORDER BY updated_at DESC, staff_id LIMIT 1",
    )
    .bind(role as i32)
    .fetch_optional(conn)
    .await
}

/// The service centre's manager for the ladder: anyone with that role not on leave, else the
/// manager of a department marked as the service centre.
pub async fn service_centre_manager(conn: &mut PgConnection) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar(
        "SELECT staff_id FROM staff WHERE role = $1 AND NOT on_leave
         UNION ALL SELECT manager_id FROM departments WHERE service_centre
         LIMIT 1",
    )
    .bind(v1::Role::ServiceCentreManager as i32)
    .fetch_optional(conn)
    .await
}

/// The complaint centre's manager for the ledger: the manager of the department marked as the
/// service centre (routing's `department.upserted`), if known.
pub async fn centre_manager(conn: &mut PgConnection) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar(
        "SELECT manager_id FROM departments WHERE service_centre AND manager_id <> ''
         ORDER BY department_id LIMIT 1",
    )
    .fetch_optional(conn)
    .await
}

/// How to reach a staff member, as routing said.
#[derive(sqlx::FromRow)]
pub struct Contact {
    pub name: String,
    pub phone: String,
    pub email: String,
}

/// The staff member's contact, `None` when routing never named them.
pub async fn contact(conn: &mut PgConnection, staff_id: &str) -> sqlx::Result<Option<Contact>> {
    sqlx::query_as::<_, Contact>("SELECT name, phone, email FROM staff WHERE staff_id = $1")
        .bind(staff_id)
        .fetch_optional(conn)
        .await
}

/// The staff member's department, `None` when routing never named them.
pub async fn staff_department(
    conn: &mut PgConnection,
    staff_id: &str,
) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar("SELECT department_id FROM staff WHERE staff_id = $1")
        .bind(staff_id)
        .fetch_optional(conn)
        .await
}

/// Dates the complaint at its receipt.
pub async fn set_received_at(
    conn: &mut PgConnection,
    id: &ComplaintId,
    at: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE complaints SET received_at = $2 WHERE complaint_id = $1")
        .bind(id.as_str())
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}

/// Dates the complaint at `at` while nothing dated it yet: the first event seen stands in until
/// its receipt is.
pub async fn date_if_undated(
    conn: &mut PgConnection,
    id: &ComplaintId,
    at: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE complaints SET received_at = $2 WHERE complaint_id = $1 AND received_at IS NULL",
    )
    .bind(id.as_str())
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records whose fault the complaint was (proto `Responsibility`).
pub async fn set_responsibility(
    conn: &mut PgConnection,
    id: &ComplaintId,
    responsibility: i32,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE complaints SET responsibility = $2 WHERE complaint_id = $1")
        .bind(id.as_str())
        .bind(responsibility)
        .execute(conn)
        .await?;
    Ok(())
}

/// Marks that the complaint missed a limit, even before any other event about it.
pub async fn mark_missed_limit(conn: &mut PgConnection, id: &ComplaintId) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO complaints (complaint_id, missed_limit) VALUES ($1, true)
         ON CONFLICT (complaint_id) DO UPDATE SET missed_limit = true",
    )
    .bind(id.as_str())
    .execute(conn)
    .await?;
    Ok(())
}

/// What a complaint's class fine is decided from.
#[derive(sqlx::FromRow)]
pub struct FineFacts {
    pub class: i32,
    pub responsible_person_id: String,
    pub responsibility: i32,
    pub department_id: String,
    /// The department of the person who would pay (named, else assigned); empty when unknown.
    pub person_department: String,
}

/// The facts of the complaint's class fine, `None` before any event about it.
pub async fn fine_facts(
    conn: &mut PgConnection,
    id: &ComplaintId,
) -> sqlx::Result<Option<FineFacts>> {
    sqlx::query_as::<_, FineFacts>(
        "SELECT c.class, c.responsible_person_id, c.assignee_id, c.responsibility,
                c.department_id, COALESCE(s.department_id, '') AS person_department
         FROM complaints c
         LEFT JOIN staff s ON s.staff_id = CASE WHEN c.responsible_person_id <> ''
            THEN c.responsible_person_id ELSE c.assignee_id END
         WHERE c.complaint_id = $1",
    )
    .bind(id.as_str())
    .fetch_optional(conn)
    .await
}

/// What a repeat complaint's doubling is decided from, about the original.
#[derive(sqlx::FromRow)]
pub struct Original {
    pub class: i32,
    pub responsible_person_id: String,
    pub missed_limit: bool,
}

/// The original of a repeat complaint, `None` when never seen.
pub async fn original(conn: &mut PgConnection, id: &ComplaintId) -> sqlx::Result<Option<Original>> {
    sqlx::query_as::<_, Original>(
        "SELECT class, responsible_person_id, assignee_id, missed_limit
         FROM complaints WHERE complaint_id = $1",
    )
    .bind(id.as_str())
    .fetch_optional(conn)
    .await
}
