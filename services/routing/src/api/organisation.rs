//! Departments, staff and routing rules over gRPC. A change and its `department.upserted` /
//! `staff.upserted` commit together, so escalation and revisit never learn of a change that did
//! not happen; lists are keyset pages by id.

use redress_platform::auth::Identity;
use redress_platform::pagination::{Key, Kind, Page};
use redress_proto::v1;

use super::Api;
use crate::error::Error;
use crate::org;
use crate::store::organisation as store;

/// Rows a page of departments or staff holds at most.
const MAX_PAGE: u32 = 500;

pub(super) async fn upsert_department(
    api: &Api,
    who: &Identity,
    req: v1::UpsertDepartmentRequest,
) -> Result<v1::UpsertDepartmentResponse, Error> {
    let d = req
        .department
        .ok_or_else(|| Error::invalid("department", "is required"))?;
    let ctx = &api.ctx;
    let mut tx = ctx.outbox.begin(&ctx.pool).await?;
    let (created, e) = org::upsert_department(&mut tx, &d, &who.to_actor(), api.now()).await?;
    ctx.outbox
        .append(&mut tx, &e.into_iter().collect::<Vec<_>>())
        .await?;
    let stored = store::department(&mut tx, &d.id).await?;
    tx.commit().await?;
    Ok(v1::UpsertDepartmentResponse {
        department: stored,
        created,
    })
}

pub(super) async fn list_departments(
    api: &Api,
    req: &v1::ListDepartmentsRequest,
) -> Result<v1::ListDepartmentsResponse, Error> {
    let page = Page::read(req.page.as_ref(), MAX_PAGE, &[Kind::Text])?;
    let mut conn = api.ctx.pool.acquire().await?;
    let rows = store::page_of_departments(&mut conn, &page).await?;
    let (departments, next_page_token) =
        page.finish(rows, |d| Ok::<_, Error>(vec![Key::Text(d.id.clone())]))?;
    Ok(v1::ListDepartmentsResponse {
        next_page_token,
        departments,
    })
}

pub(super) async fn upsert_staff(
    api: &Api,
    who: &Identity,
    req: v1::UpsertStaffRequest,
) -> Result<v1::UpsertStaffResponse, Error> {
    let s = req
        .staff
        .ok_or_else(|| Error::invalid("staff", "is required"))?;
    let ctx = &api.ctx;
    let mut tx = ctx.outbox.begin(&ctx.pool).await?;
    let (created, e) =
        org::upsert_staff(&mut tx, &s, req.lift_suspension, &who.to_actor(), api.now()).await?;
    ctx.outbox
        .append(&mut tx, &e.into_iter().collect::<Vec<_>>())
        .await?;
    let stored = store::staff(&mut tx, &s.id).await?;
    tx.commit().await?;
    Ok(v1::UpsertStaffResponse {
        staff: stored,
        created,
    })
}

pub(super) async fn list_staff(
    api: &Api,
    req: &v1::ListStaffRequest,
) -> Result<v1::ListStaffResponse, Error> {
    let page = Page::read(req.page.as_ref(), MAX_PAGE, &[Kind::Text])?;
    let filter = store::StaffFilter {
        department_id: &req.department_id,
        role: req.role,
        include_on_leave: req.include_on_leave,
    };
    let mut conn = api.ctx.pool.acquire().await?;
    let rows = store::page_of_staff(&mut conn, &filter, &page).await?;
    let (staff, next_page_token) =
        page.finish(rows, |s| Ok::<_, Error>(vec![Key::Text(s.id.clone())]))?;
    Ok(v1::ListStaffResponse {
        next_page_token,
        staff,
    })
}

pub(super) async fn set_routing_rules(
    api: &Api,
    req: v1::SetRoutingRulesRequest,
) -> Result<v1::SetRoutingRulesResponse, Error> {
    let mut tx = api.ctx.pool.begin().await?;
    let version = org::set_rules(&mut tx, &req.rules, &req.default_department_id).await?;
    tx.commit().await?;
    Ok(v1::SetRoutingRulesResponse { version })
}

pub(super) async fn get_routing_rules(api: &Api) -> Result<v1::GetRoutingRulesResponse, Error> {
    let mut conn = api.ctx.pool.acquire().await?;
    org::get_rules(&mut conn).await
}
