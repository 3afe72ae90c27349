//! Reading revisits: one revisit with what the agent needs to make the call
//! (`ListDueRevisits`, and every command's answer).

use redress_domain::revisit::RevisitKind;
use redress_proto::v1;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use crate::envelope::{state_to_proto, ts};
use crate::error::Error;
use redress_proto::Wire as _;
use redress_proto::convert::class_letter_to_wire;

/// The columns [`from_row`] reads, for `FROM revisits r JOIN complaints c USING (complaint_id)`
/// (a macro so queries stay static strings).
#[macro_export]
macro_rules! revisit_columns {
    () => {
        "r.revisit_id, r.complaint_id, c.number, r.kind, r.state, r.due_at, r.call_at,
         r.agent_id, c.department_id, c.customer_name, c.customer_phone, c.class, c.summary,
         c.result, r.attempts, r.satisfied"
    };
}

pub fn from_row(row: &PgRow) -> Result<v1::Revisit, Error> {
    let kind: String = row.try_get("kind")?;
    let state: String = row.try_get("state")?;
    let class: Option<String> = row.try_get("class")?;
    let due: chrono::DateTime<chrono::Utc> = row.try_get("due_at")?;
    Ok(v1::Revisit {
        revisit_id: row.try_get("revisit_id")?,
        complaint_id: row.try_get("complaint_id")?,
        complaint_number: row.try_get("number")?,
        kind: RevisitKind::parse(&kind)
            .map_or(v1::RevisitKind::Unspecified as i32, |k| k.to_wire()),
        state: state_to_proto(&state) as i32,
        due_at: Some(ts(due)),
        agent_id: row
            .try_get::<Option<String>, _>("agent_id")?
            .unwrap_or_default(),
        department_id: row.try_get("department_id")?,
        customer_name: row.try_get("customer_name")?,
        customer_phone: row.try_get("customer_phone")?,
        class: class_letter_to_wire(class.as_deref().unwrap_or_default()),
        complaint_summary: row.try_get("summary")?,
        result: row.try_get("result")?,
        attempts: u32::try_from(row.try_get::<i32, _>("attempts")?).unwrap_or(0),
        satisfied: row.try_get("satisfied")?,
    })
}

/// One revisit by id.
pub async fn get(conn: &mut PgConnection, revisit_id: &str) -> Result<v1::Revisit, Error> {
    let row = sqlx::query(concat!(
        "SELECT ",
        revisit_columns!(),
        " FROM revisits r JOIN complaints c USING (complaint_id) WHERE r.revisit_id = $1"
    ))
    .bind(revisit_id)
    .fetch_optional(conn)
    .await?
    .ok_or_else(|| Error::NotFound(format!("revisit {revisit_id}")))?;
    from_row(&row)
}
