//! The reads staff and dashboards make of the registry: one complaint with its whole timeline
//! (`GetComplaint`), and the paged list (`ListComplaints`).

use chrono::{DateTime, Utc};
use prost::Message as _;
use redress_domain::ComplaintId;
use redress_platform::access::Place;
use redress_platform::auth::Identity;
use redress_platform::pagination::{Key, Kind, Page};
use redress_platform::request::complaint_id;
use redress_proto::Wire as _;
use redress_proto::v1;
use tonic::Status;

use super::Api;
use crate::access;
use crate::error::Error;
use crate::registry::current;
use crate::store::{self, ComplaintFilter};
use crate::submission::ts;

/// Largest page `ListComplaints` returns.
pub const MAX_PAGE: u32 = 200;

/// A complaint's details and acknowledgement as stored.
fn decoded(
    row: &store::ComplaintRow,
) -> Result<(v1::ComplaintDetails, v1::Acknowledgement), Error> {
    let details = v1::ComplaintDetails::decode(row.details.as_slice())
        .map_err(|e| Error::Internal(e.to_string()))?;
    let ack = v1::Acknowledgement::decode(row.acknowledgement.as_slice())
        .map_err(|e| Error::Internal(e.to_string()))?;
    Ok((details, ack))
}

impl Api {
    /// The complaint named by `raw` — its id, or the number people were told
    /// (`RD20261201-000001`) — with its state and its whole timeline, if within the caller's
    /// reach; the customer masked where the caller may not see them.
    pub(super) async fn complaint(
        &self,
        who: &Identity,
        raw: &str,
    ) -> Result<v1::ComplaintView, Status> {
        let raw = raw.trim();
        let id = match complaint_id(raw) {
            Ok(id) => id,
            Err(not_an_id) => store::id_of_number(&self.pool, raw)
                .await
                .map_err(Error::from)?
                .ok_or_else(|| Error::from(not_an_id))?,
        };
        let id = ComplaintId::parse(&id).map_err(|e| Error::Internal(e.to_string()))?;
        let mut view = self.view(&id).await?;
        let place = Place::new(&view.department_id, &view.assignee_id);
        access::may_see(who, place, &id)?;
        access::mask_view(who, &mut view);
        Ok(view)
    }

    /// `GetComplaint`: the record, its state and its whole timeline.
    async fn view(&self, id: &ComplaintId) -> Result<v1::ComplaintView, Error> {
        let (row, timeline) = store::complaint_with_timeline(&self.pool, id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("complaint {id}")))?;
        let (details, ack) = decoded(&row)?;
        let (class, reasons, promises) = current(&self.recorder.policy, &row, &ack)?;
        Ok(v1::ComplaintView {
            complaint_id: row.complaint_id,
            number: row.number,
            details: Some(details),
            class: class.to_wire(),
            status: row.status,
            department_id: row.department_id,
            assignee_id: row.assignee_id,
            overdue: row.overdue,
            promises,
            confirmed: row.confirmed,
            timeline,
            classification_reasons: reasons,
            guidance: ack.guidance,
            received_at: Some(ts(row.received_at)),
            satisfaction: row.satisfaction,
        })
    }

    /// `ListComplaints`: newest first, filtered to the caller's reach, one page; the
    /// customer's name masked where the caller may not see it.
    pub(super) async fn list(
        &self,
        who: &Identity,
        req: &v1::ListComplaintsRequest,
    ) -> Result<v1::ListComplaintsResponse, Status> {
        let page = Page::read(req.page.as_ref(), MAX_PAGE, &[Kind::Time, Kind::Text])?;
        let class = match v1::Class::try_from(req.class) {
            Ok(v1::Class::Unspecified) => None,
            Ok(c) => Some(c.as_str_name().trim_start_matches("CLASS_").to_owned()),
            Err(_) => return Err(Error::invalid("class", "unknown class").into()),
        };
        let channel = match v1::Channel::try_from(req.channel) {
            Ok(v1::Channel::Unspecified) => None,
            Ok(c) => Some(
                c.as_str_name()
                    .trim_start_matches("CHANNEL_")
                    .to_ascii_lowercase(),
            ),
            Err(_) => return Err(Error::invalid("channel", "unknown channel").into()),
        };
        let time = |t: &Option<prost_types::Timestamp>,
                    field: &str|
         -> Result<Option<DateTime<Utc>>, Error> {
            t.as_ref()
                .map(|t| {
                    DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(u32::MAX))
                        .ok_or_else(|| Error::invalid(field, "is not a valid timestamp"))
                })
                .transpose()
        };
        let reach = access::list_reach(who);
        let filter = ComplaintFilter {
            reach: &reach,
            status: (!req.status.is_empty()).then_some(req.status.as_str()),
            class,
            department_id: (!req.department_id.is_empty()).then_some(req.department_id.as_str()),
            channel,
            overdue: req.overdue,
            received_from: time(&req.received_from, "received_from")?,
            received_to: time(&req.received_to, "received_to")?,
        };
        let rows = store::list(&self.pool, &filter, &page)
            .await
            .map_err(Error::from)?;
        let (rows, next_page_token) = page.finish(rows, |r| {
            Ok::<_, Error>(vec![
                Key::Time(r.received_at),
                Key::Text(r.complaint_id.clone()),
            ])
        })?;
        let mut complaints = Vec::with_capacity(rows.len());
        for r in rows {
            let (details, ack) = decoded(&r)?;
            let (class, _, promises) = current(&self.recorder.policy, &r, &ack)?;
            complaints.push(v1::ComplaintSummary {
                complaint_id: r.complaint_id,
                number: r.number,
                class: class.to_wire(),
                status: r.status,
                channel: v1::Channel::from_str_name(&format!(
                    "CHANNEL_{}",
                    r.channel.to_ascii_uppercase()
                ))
                .unwrap_or(v1::Channel::Unspecified) as i32,
                customer_name: details
                    .customer
                    .as_ref()
                    .map(|c| c.name.clone())
                    .unwrap_or_default(),
                department_id: r.department_id,
                assignee_id: r.assignee_id,
                overdue: r.overdue,
                received_at: Some(ts(r.received_at)),
                completion_due: promises.and_then(|p| p.completion_due),
                category: r.category,
                description_excerpt: details.description.chars().take(80).collect(),
            });
        }
        access::mask_summaries(who, &mut complaints);
        Ok(v1::ListComplaintsResponse {
            complaints,
            next_page_token,
        })
    }
}
