//! The policy's reports (DOMAIN §8), read from the projection: the supervisor's daily complaint
//! log, the monthly complaint analysis (by class, department, category, cause, channel and
//! customer type, with the trend of the months before and each department's complaint-rate
//! band), and the yearly department report. JSON for the
//! board's report page and for tools; `format=csv` for spreadsheets.
//!
//! Days, months and years are those of the policy's calendar time zone.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Datelike as _, Months, NaiveDate, TimeZone as _, Utc};
use serde::{Deserialize, Serialize};

use redress_domain::{RateBand, penalty};
use redress_platform::auth::Identity;

use super::{Board, Refusal, caller};
use crate::access;
use crate::store::{self, Dimension, LogLine, MonthTally, Tally};

#[derive(Debug, Deserialize)]
pub struct Params {
    access_token: Option<String>,
    /// `YYYY-MM-DD` (daily), `YYYY-MM` (monthly), `YYYY` (yearly); today's by default.
    period: Option<String>,
    /// `json` (default) or `csv`.
    format: Option<String>,
}

/// JSON or CSV.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
}

/// Which of the policy's reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Daily,
    Monthly,
    Yearly,
}

/// A report as it is handed out, over HTTP or gRPC.
pub struct Rendered {
    pub content_type: &'static str,
    pub body: String,
    pub file_name: String,
}

impl IntoResponse for Rendered {
    fn into_response(self) -> Response {
        let mut headers = vec![(header::CONTENT_TYPE, self.content_type.to_owned())];
        if self.content_type.starts_with("text/csv") {
            headers.push((
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}\"", self.file_name),
            ));
        }
        (axum::response::AppendHeaders(headers), self.body).into_response()
    }
}

fn json(name: String, value: &impl Serialize) -> Result<Rendered, Refusal> {
    let body = serde_json::to_string(value).map_err(|e| {
        Refusal::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            None,
            &format!("report: {e}"),
        )
    })?;
    Ok(Rendered {
        content_type: "application/json",
        body,
        file_name: format!("{name}.json"),
    })
}

fn format(p: &Params) -> Result<Format, Refusal> {
    match p.format.as_deref().unwrap_or("json") {
        "json" => Ok(Format::Json),
        "csv" => Ok(Format::Csv),
        other => Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            Some("format"),
            &format!("format {other:?} is not json or csv"),
        )),
    }
}

/// The first instant of a local date, in UTC.
fn start_of(board: &Board, date: NaiveDate) -> DateTime<Utc> {
    let zone = board.policy.calendar.timezone;
    date.and_hms_opt(0, 0, 0)
        .and_then(|t| zone.from_local_datetime(&t).single())
        .map_or_else(
            || Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0).unwrap_or_default()),
            |t| t.with_timezone(&Utc),
        )
}

fn today(board: &Board) -> NaiveDate {
    board
        .clock
        .now()
        .with_timezone(&board.policy.calendar.timezone)
        .date_naive()
}

fn period_error(expected: &str) -> Refusal {
    Refusal::new(
        StatusCode::BAD_REQUEST,
        Some("period"),
        &format!("period must be {expected}"),
    )
}

fn csv_cell(value: &str) -> String {
    if value.contains([',', '"', '\n']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

fn csv(name: &str, header_row: &[&str], rows: Vec<Vec<String>>) -> Result<Rendered, Refusal> {
    let mut text = header_row.join(",");
    text.push('\n');
    for row in rows {
        let cells: Vec<String> = row.iter().map(|c| csv_cell(c)).collect();
        text.push_str(&cells.join(","));
        text.push('\n');
    }
    Ok(Rendered {
        content_type: "text/csv; charset=utf-8",
        body: text,
        file_name: format!("{name}.csv"),
    })
}

fn tally_cells(t: &Tally) -> Vec<String> {
    vec![
        t.received.to_string(),
        t.resolved.to_string(),
        t.overdue.to_string(),
        t.satisfied.to_string(),
        t.dissatisfied.to_string(),
    ]
}

const TALLY_HEADER: [&str; 5] = [
    "received",
    "resolved",
    "overdue",
    "satisfied",
    "dissatisfied",
];

fn unavailable(e: &sqlx::Error) -> Refusal {
    tracing::warn!(error = %e, "board report");
    Refusal::new(
        StatusCode::SERVICE_UNAVAILABLE,
        None,
        "the board's store is not reachable; retry",
    )
}

/// `GET /api/reports/{daily,monthly,yearly}`: the caller, the format, then [`render`].
async fn serve(board: Board, headers: HeaderMap, params: Params, kind: Kind) -> Response {
    let rendered = async {
        let who = caller(&board, &headers, params.access_token.as_deref())?;
        let format = format(&params)?;
        render(&board, &who, kind, params.period.as_deref(), format).await
    };
    match rendered.await {
        Ok(r) => r.into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

/// `GET /api/reports/daily?period=YYYY-MM-DD`.
pub async fn daily(
    State(board): State<Board>,
    headers: HeaderMap,
    Query(params): Query<Params>,
) -> Response {
    serve(board, headers, params, Kind::Daily).await
}

/// `GET /api/reports/monthly?period=YYYY-MM`.
pub async fn monthly(
    State(board): State<Board>,
    headers: HeaderMap,
    Query(params): Query<Params>,
) -> Response {
    serve(board, headers, params, Kind::Monthly).await
}

/// `GET /api/reports/yearly?period=YYYY`.
pub async fn yearly(
    State(board): State<Board>,
    headers: HeaderMap,
    Query(params): Query<Params>,
) -> Response {
    serve(board, headers, params, Kind::Yearly).await
}

/// One report for `who`, for the period given (the current one when `None` or empty).
pub async fn render(
    board: &Board,
    who: &Identity,
    kind: Kind,
    period: Option<&str>,
    format: Format,
) -> Result<Rendered, Refusal> {
    let period = period.map(str::trim).filter(|p| !p.is_empty());
    match kind {
        Kind::Daily => daily_report(board, who, period, format).await,
        Kind::Monthly => monthly_report(board, who, period, format).await,
        Kind::Yearly => yearly_report(board, who, period, format).await,
    }
}

#[derive(Serialize)]
struct Daily {
    date: NaiveDate,
    complaints: Vec<LogLine>,
    by_class: Vec<Tally>,
    by_department: Vec<Tally>,
}

/// The supervisor's daily complaint log (`period` YYYY-MM-DD).
async fn daily_report(
    board: &Board,
    who: &Identity,
    period: Option<&str>,
    format: Format,
) -> Result<Rendered, Refusal> {
    let date = match period {
        None => today(board),
        Some(p) => NaiveDate::parse_from_str(p, "%Y-%m-%d")
            .map_err(|_| period_error("a date, YYYY-MM-DD"))?,
    };
    let scope = access::scope(who);
    let (from, to) = (
        start_of(board, date),
        start_of(board, date + chrono::Days::new(1)),
    );
    let read = async {
        Ok::<_, sqlx::Error>(Daily {
            date,
            complaints: store::received_between(&board.pool, &scope, from, to).await?,
            by_class: store::breakdown(&board.pool, &scope, Dimension::Class, from, to).await?,
            by_department: store::breakdown(&board.pool, &scope, Dimension::Department, from, to)
                .await?,
        })
    };
    let report = read.await.map_err(|e| unavailable(&e))?;
    if format == Format::Json {
        return json(format!("complaints-{date}"), &report);
    }
    let time = |t: Option<DateTime<Utc>>| t.map(|t| t.to_rfc3339()).unwrap_or_default();
    let rows = report
        .complaints
        .iter()
        .map(|l| {
            vec![
                l.complaint_number.clone(),
                time(l.received_at),
                l.class.clone(),
                l.channel.clone(),
                l.category.clone(),
                l.customer_type.clone(),
                l.business.clone(),
                l.department_name.clone(),
                l.handler_name.clone(),
                l.stage.clone(),
                time(l.resolved_at),
                l.overdue.to_string(),
                l.satisfied.map(|s| s.to_string()).unwrap_or_default(),
            ]
        })
        .collect();
    csv(
        &format!("complaints-{date}"),
        &[
            "number",
            "received_at",
            "class",
            "channel",
            "category",
            "customer_type",
            "business",
            "department",
            "handler",
            "stage",
            "resolved_at",
            "overdue",
            "satisfied",
        ],
        rows,
    )
}

#[derive(Serialize)]
struct Breakdown {
    dimension: &'static str,
    tallies: Vec<Tally>,
}

#[derive(Serialize)]
struct Trend {
    month: String,
    received: i64,
    resolved: i64,
    overdue: i64,
}

/// A department's complaint rate for the month and its band (DOMAIN §7), worked out by the
/// domain from the same two terms escalation's monthly report uses.
#[derive(Serialize)]
struct Rate {
    department_id: String,
    department_name: String,
    complaints: i64,
    /// 0 when none was entered for the month.
    business_volume: i64,
    /// T in basis points; absent without a business volume.
    rate_bp: Option<u64>,
    rate_percent: Option<String>,
    /// The band's label as the policy writes it (`0.80% < T <= 0.85%`).
    band: Option<String>,
    head_penalty_fen: i64,
    /// Above the last band an approver chooses the amount (the default is shown).
    head_penalty_needs_approval: bool,
}

fn rate(policy: &redress_domain::Policy, terms: store::RateTerms) -> Rate {
    let n = |v: i64| u64::try_from(v).unwrap_or(0);
    let band = penalty::rate_band(policy, n(terms.complaints), n(terms.volume));
    Rate {
        department_id: terms.department_id,
        department_name: terms.department_name,
        complaints: terms.complaints,
        business_volume: terms.volume,
        rate_bp: band.rate_bp(),
        rate_percent: band.rate_bp().map(penalty::percent),
        band: band.bounds(policy).map(|b| b.label),
        head_penalty_fen: band.penalty().fen(),
        head_penalty_needs_approval: matches!(band, RateBand::Above { .. }),
    }
}

#[derive(Serialize)]
struct Monthly {
    month: String,
    breakdowns: Vec<Breakdown>,
    /// Each department's complaint rate and band.
    rates: Vec<Rate>,
    /// This month and the five before it.
    trend: Vec<Trend>,
}

fn month_of(period: Option<&str>, board: &Board) -> Result<NaiveDate, Refusal> {
    match period {
        None => Ok(today(board).with_day(1).unwrap_or_default()),
        Some(p) => NaiveDate::parse_from_str(&format!("{p}-01"), "%Y-%m-%d")
            .map_err(|_| period_error("a month, YYYY-MM")),
    }
}

/// The monthly complaint analysis (`period` YYYY-MM).
async fn monthly_report(
    board: &Board,
    who: &Identity,
    period: Option<&str>,
    format: Format,
) -> Result<Rendered, Refusal> {
    let first = month_of(period, board)?;
    let scope = access::scope(who);
    let next = first + Months::new(1);
    let (from, to) = (start_of(board, first), start_of(board, next));
    let trend_from = start_of(board, first - Months::new(5));
    let offset = board.policy.calendar.timezone.local_minus_utc();
    let read = async {
        let mut breakdowns: Vec<Breakdown> = Dimension::ALL
            .iter()
            .map(|d| Breakdown {
                dimension: d.name(),
                tallies: Vec::new(),
            })
            .collect();
        for (dimension, tally) in store::breakdowns(&board.pool, &scope, from, to).await? {
            if let Some(b) = breakdowns
                .iter_mut()
                .find(|b| b.dimension == dimension.name())
            {
                b.tallies.push(tally);
            }
        }
        let mut trend: Vec<Trend> = Vec::new();
        for MonthTally { month, tally: t } in
            store::by_month(&board.pool, &scope, trend_from, to, offset).await?
        {
            match trend.last_mut() {
                Some(last) if last.month == month => {
                    last.received += t.received;
                    last.resolved += t.resolved;
                    last.overdue += t.overdue;
                }
                _ => trend.push(Trend {
                    month,
                    received: t.received,
                    resolved: t.resolved,
                    overdue: t.overdue,
                }),
            }
        }
        let month = first.format("%Y-%m").to_string();
        let rates = match access::rate_scope(who) {
            Some(scope) => store::rate_terms(&board.pool, &scope, from, to, &month)
                .await?
                .into_iter()
                .map(|terms| rate(&board.policy, terms))
                .collect(),
            None => Vec::new(),
        };
        Ok::<_, sqlx::Error>(Monthly {
            month,
            breakdowns,
            rates,
            trend,
        })
    };
    let report = read.await.map_err(|e| unavailable(&e))?;
    if format == Format::Json {
        return json(format!("complaints-{}", report.month), &report);
    }
    // One table: the breakdowns' rows leave the rate columns empty, and each department's
    // rate row (dimension `complaint_rate`) gives its complaints as `received`.
    let mut rows = Vec::new();
    for b in &report.breakdowns {
        for t in &b.tallies {
            let mut row = vec![b.dimension.to_owned(), t.key.clone()];
            row.extend(tally_cells(t));
            row.extend([String::new(), String::new(), String::new(), String::new()]);
            rows.push(row);
        }
    }
    for r in &report.rates {
        let mut row = vec![
            "complaint_rate".to_owned(),
            r.department_name.clone(),
            r.complaints.to_string(),
        ];
        row.extend((1..TALLY_HEADER.len()).map(|_| String::new()));
        row.extend([
            r.business_volume.to_string(),
            r.rate_percent.clone().unwrap_or_default(),
            r.band.clone().unwrap_or_default(),
            r.head_penalty_fen.to_string(),
        ]);
        rows.push(row);
    }
    let mut header_row = vec!["dimension", "value"];
    header_row.extend(TALLY_HEADER);
    header_row.extend([
        "business_volume",
        "rate_percent",
        "band",
        "head_penalty_fen",
    ]);
    csv(&format!("complaints-{}", report.month), &header_row, rows)
}

#[derive(Serialize)]
struct DepartmentYear {
    department: String,
    months: Vec<MonthTally>,
}

#[derive(Serialize)]
struct Yearly {
    year: i32,
    departments: Vec<DepartmentYear>,
}

/// Each department's complaints month by month (`period` YYYY).
async fn yearly_report(
    board: &Board,
    who: &Identity,
    period: Option<&str>,
    format: Format,
) -> Result<Rendered, Refusal> {
    let year = match period {
        None => today(board).year(),
        Some(p) => match p.parse::<i32>() {
            Ok(y) if (2000..=2200).contains(&y) => y,
            _ => return Err(period_error("a year, YYYY")),
        },
    };
    let (Some(first), Some(next)) = (
        NaiveDate::from_ymd_opt(year, 1, 1),
        NaiveDate::from_ymd_opt(year + 1, 1, 1),
    ) else {
        return Err(period_error("a year, YYYY"));
    };
    let scope = access::scope(who);
    let offset = board.policy.calendar.timezone.local_minus_utc();
    let rows = store::by_month(
        &board.pool,
        &scope,
        start_of(board, first),
        start_of(board, next),
        offset,
    )
    .await
    .map_err(|e| unavailable(&e))?;
    if format == Format::Csv {
        let mut header_row = vec!["month", "department"];
        header_row.extend(TALLY_HEADER);
        let rows = rows
            .iter()
            .map(|m| {
                let mut row = vec![m.month.clone(), m.tally.key.clone()];
                row.extend(tally_cells(&m.tally));
                row
            })
            .collect();
        return csv(&format!("departments-{year}"), &header_row, rows);
    }
    let mut departments: Vec<DepartmentYear> = Vec::new();
    for m in rows {
        match departments.iter_mut().find(|d| d.department == m.tally.key) {
            Some(d) => d.months.push(m),
            None => departments.push(DepartmentYear {
                department: m.tally.key.clone(),
                months: vec![m],
            }),
        }
    }
    json(format!("departments-{year}"), &Yearly { year, departments })
}
