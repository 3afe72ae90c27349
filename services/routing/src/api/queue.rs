//! Who has a complaint: a manager assigns or reassigns it within the responsible department,
//! the department or the centre reroutes it to another (assigned there at once), and everyone
//! works from queues in priority order.

use redress_domain::ComplaintId;
use redress_domain::handling::Command;
use redress_platform::access::{Place, Reach, Sight};
use redress_platform::auth::Identity;
use redress_platform::pagination::Page;
use redress_proto::v1::{self, event::Payload};
use sqlx::PgConnection;

use super::{Api, complaint, text};
use crate::access::{Allow, MANAGER};
use crate::commands;
use crate::envelope::{PRODUCER, ts};
use crate::error::Error;
use crate::store::handling::{self as store, QUEUE_KEY, QueueFilter};
use crate::store::organisation;

/// Rows a page of a queue holds at most.
const MAX_PAGE: u32 = 500;

/// A handler of a department, available or not (a manual choice may pick anyone there, someone
/// on leave included) — but never a suspended one, who is being rectified.
async fn handler_in(conn: &mut PgConnection, staff_id: &str) -> Result<v1::Staff, Error> {
    let s = organisation::staff(conn, staff_id)
        .await?
        .ok_or_else(|| Error::invalid("staff_id", "names no known member of staff"))?;
    if s.suspended {
        return Err(Error::FailedPrecondition(format!(
            "{staff_id} is suspended for rectification and gets no new complaints"
        )));
    }
    Ok(s)
}

/// Who has the complaint now, as the assign and reassign answers tell it.
struct Given {
    department_id: String,
    assignee_id: String,
    previous_assignee_id: String,
}

/// Gives the complaint to `staff_id` (assign or reassign): only within the responsible
/// department, since moving it elsewhere is a reroute with its own event and limits.
async fn give_to(
    api: &Api,
    who: &Identity,
    id: &ComplaintId,
    staff_id: &str,
    reason: &str,
    command: Command,
) -> Result<Given, Error> {
    let (mut tx, mut rec) = api.start(who, id, MANAGER).await?;
    let person = handler_in(&mut tx, staff_id).await?;
    if person.department_id != rec.department_id {
        return Err(Error::invalid(
            "staff_id",
            "is not in the responsible department; reroute first",
        ));
    }
    if person.id == rec.assignee_id {
        return Err(Error::FailedPrecondition(format!(
            "complaint is {} and already assigned to {staff_id}",
            rec.stage
        )));
    }
    commands::apply(&api.ctx, &mut rec, command)?;
    let previous = std::mem::replace(&mut rec.assignee_id, person.id.clone());
    let manager = organisation::department(&mut tx, &rec.department_id)
        .await?
        .map(|d| d.manager_id)
        .unwrap_or_default();
    let now = api.now();
    let e = PRODUCER.event(
        rec.complaint_id.as_str(),
        now,
        &who.to_actor(),
        "",
        Payload::ComplaintAssigned(v1::ComplaintAssigned {
            department_id: rec.department_id.clone(),
            assignee_id: person.id.clone(),
            assignee_name: person.name.clone(),
            previous_assignee_id: previous.clone(),
            reason: reason.to_owned(),
            department_manager_id: manager,
        }),
    );
    commands::finish(&api.ctx, tx, &rec, &[e], now).await?;
    Ok(Given {
        department_id: rec.department_id.clone(),
        assignee_id: person.id,
        previous_assignee_id: previous,
    })
}

pub(super) async fn assign(
    api: &Api,
    who: &Identity,
    r: v1::AssignRequest,
) -> Result<v1::AssignResponse, Error> {
    let reason = text("reason", &r.reason, false)?;
    let reason = if reason.is_empty() {
        "assigned by hand".to_owned()
    } else {
        reason
    };
    let id = complaint(&r.complaint_id)?;
    let given = give_to(api, who, &id, &r.staff_id, &reason, Command::Assign).await?;
    Ok(v1::AssignResponse {
        department_id: given.department_id,
        assignee_id: given.assignee_id,
    })
}

pub(super) async fn reassign(
    api: &Api,
    who: &Identity,
    r: v1::ReassignRequest,
) -> Result<v1::ReassignResponse, Error> {
    // Taking a complaint from someone is answerable: the reason is required.
    let reason = text("reason", &r.reason, true)?;
    let id = complaint(&r.complaint_id)?;
    let given = give_to(api, who, &id, &r.staff_id, &reason, Command::Reassign).await?;
    Ok(v1::ReassignResponse {
        department_id: given.department_id,
        assignee_id: given.assignee_id,
        previous_assignee_id: given.previous_assignee_id,
    })
}

pub(super) async fn reroute(
    api: &Api,
    who: &Identity,
    r: v1::RerouteRequest,
) -> Result<v1::RerouteResponse, Error> {
    let reason = text("reason", &r.reason, true)?;
    if r.department_id.trim().is_empty() {
        return Err(Error::invalid("department_id", "is required"));
    }
    // The department's manager sends it on, or the centre that coordinates it; the handler
    // does not pass a complaint off alone.
    let allow = Allow {
        assignee: false,
        manager: true,
        agent: true,
    };
    let (mut tx, mut rec) = api.start(who, &complaint(&r.complaint_id)?, allow).await?;
    if r.department_id == rec.department_id {
        return Err(Error::invalid("department_id", "is already responsible"));
    }
    let previous = rec.department_id.clone();
    let now = api.now();
    let events = commands::route_and_assign(
        &api.ctx,
        &mut tx,
        &mut rec,
        Command::Reroute,
        &r.department_id,
        "",
        &reason,
        &who.to_actor(),
        "",
        now,
    )
    .await?;
    commands::finish(&api.ctx, tx, &rec, &events, now).await?;
    Ok(v1::RerouteResponse {
        department_id: rec.department_id,
        previous_department_id: previous,
    })
}

/// A queue in priority order ([`store::queue`]), limited to what the caller may reach; the
/// customer's name shows only to those who may see it.
pub(super) async fn list_queue(
    api: &Api,
    who: &Identity,
    r: v1::ListQueueRequest,
) -> Result<v1::ListQueueResponse, Error> {
    if r.department_id.is_empty() && r.handler_id.is_empty() {
        return Err(Error::invalid(
            "department_id",
            "give a department, a handler, or both",
        ));
    }
    let page = Page::read(r.page.as_ref(), MAX_PAGE, &QUEUE_KEY)?;
    let reach = Reach::of(who);
    let filter = QueueFilter {
        department_id: &r.department_id,
        handler_id: &r.handler_id,
        include_finished: r.include_finished,
        reach: &reach,
    };
    let mut conn = api.ctx.pool.acquire().await?;
    let rows = store::queue(&mut conn, &filter, &page).await?;
    let (rows, next_page_token) = page.finish(rows, |row| Ok::<_, Error>(row.key()))?;
    let now = api.now();
    let items = rows
        .into_iter()
        .map(|row| {
            let sight = Sight::of(who, Place::new(&row.department_id, &row.assignee_id));
            let due = row.completion_due;
            v1::QueueItem {
                customer_name: sight.show(&row.customer_name),
                complaint_id: row.complaint_id,
                number: row.number,
                class: redress_proto::convert::class_letter_to_wire(&row.class),
                group_complaint: row.group_complaint,
                customers_affected: u32::try_from(row.customers_affected).unwrap_or(1),
                media_risk: row.media_risk,
                time_left: due.map(|d| prost_types::Duration {
                    seconds: (d - now).num_seconds(),
                    nanos: 0,
                }),
                completion_due: due.map(ts),
                department_id: row.department_id,
                assignee_id: row.assignee_id,
                stage: row.stage,
                category: row.category,
                customer_type: row.customer_type,
                received_at: row.received_at.map(ts),
            }
        })
        .collect();
    Ok(v1::ListQueueResponse {
        next_page_token,
        items,
    })
}
