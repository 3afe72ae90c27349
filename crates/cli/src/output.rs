//! How the staff commands print: aligned tables and `key: value` lines for people, and the
//! proto3 JSON mapping of the response message for scripts (`--json`), so a script sees exactly
//! the fields the gRPC contract documents, with the contract's names.

use anyhow::{Context, Result};
use chrono::{DateTime, SecondsFormat, Utc};
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor};
use redress_proto::prost::Message;
use redress_proto::prost_types::{Duration, Timestamp};

/// Writes `text` to standard output. A reader that went away (`redress list | head`) ends the
/// command quietly with success, as for any Unix filter — printing must never panic on a
/// closed pipe. Other write errors are returned.
pub fn stdout(text: &str) -> Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => Err(e).context("writing to standard output"),
    }
}

/// The proto3 JSON mapping of `message`, whose full name is `redress.complaints.v1.<name>`.
pub fn json<M: Message>(name: &str, message: &M) -> Result<String> {
    let desc = descriptor(name)?;
    let full = desc.full_name().to_string();
    let dynamic = DynamicMessage::decode(desc, message.encode_to_vec().as_slice())
        .with_context(|| format!("re-reading {full}"))?;
    serde_json::to_string_pretty(&dynamic).context("writing JSON")
}

/// The descriptor of `redress.complaints.v1.<name>`, for the proto3 JSON mapping.
pub fn descriptor(name: &str) -> Result<MessageDescriptor> {
    let pool = DescriptorPool::decode(redress_proto::FILE_DESCRIPTOR_SET)
        .context("decoding the descriptor set")?;
    let full = format!("redress.complaints.v1.{name}");
    pool.get_message_by_name(&full)
        .with_context(|| format!("no descriptor for {full}"))
}

/// The values a command-line flag accepts for the proto enum whose values are named
/// `<prefix>…`, as [`label`] prints them, without the `UNSPECIFIED` placeholder; empty if no
/// such enum is known. Lets a usage error say what would have been accepted.
pub fn choices(prefix: &str) -> Vec<String> {
    let Ok(pool) = DescriptorPool::decode(redress_proto::FILE_DESCRIPTOR_SET) else {
        return Vec::new();
    };
    let placeholder = format!("{prefix}UNSPECIFIED");
    pool.all_enums()
        .find(|e| {
            e.values().any(|v| v.name() == placeholder)
                && e.values().all(|v| v.name().starts_with(prefix))
        })
        .map(|e| {
            e.values()
                .filter(|v| v.name() != placeholder)
                .map(|v| label(v.name(), prefix))
                .collect()
        })
        .unwrap_or_default()
}

/// A table printed with columns aligned to their widest cell.
pub struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&'static str]) -> Self {
        Self {
            headers: headers.to_vec(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as text, one line per row, a header line first; `(none)` when empty.
    pub fn render(&self) -> String {
        if self.rows.is_empty() {
            return "(none)\n".to_string();
        }
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                if let Some(w) = widths.get_mut(i) {
                    *w = (*w).max(cell.chars().count());
                }
            }
        }
        let line = |cells: &mut dyn Iterator<Item = &str>| {
            let mut out = String::new();
            for (i, cell) in cells.enumerate() {
                let width = widths.get(i).copied().unwrap_or(0);
                if i + 1 < widths.len() {
                    out.push_str(cell);
                    out.push_str(&" ".repeat(width - cell.chars().count() + 2));
                } else {
                    out.push_str(cell);
                }
            }
            out.trim_end().to_string() + "\n"
        };
        let mut out = line(&mut self.headers.iter().copied());
        for row in &self.rows {
            out.push_str(&line(&mut row.iter().map(String::as_str)));
        }
        out
    }
}

/// `out` followed, when there is a next page, by the flag that fetches it.
pub fn with_next_page(mut out: String, token: &str) -> String {
    if !token.is_empty() {
        out.push_str(&format!("next page: --page-token {token}\n"));
    }
    out
}

/// `key: value` lines, keys aligned, empty values left out.
pub fn fields(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k:<width$}  {v}\n"))
        .collect()
}

/// A timestamp in UTC to the second, or `-`.
pub fn time(ts: Option<&Timestamp>) -> String {
    ts.and_then(|t| DateTime::<Utc>::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0)))
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or_else(|| "-".to_string())
}

/// A duration as `1h02m`, `-5m` (past due) or `-`.
pub fn duration(d: Option<&Duration>) -> String {
    let Some(d) = d else {
        return "-".to_string();
    };
    let sign = if d.seconds < 0 { "-" } else { "" };
    let s = d.seconds.unsigned_abs();
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, sec) => format!("{sign}{sec}s"),
        (0, m, _) => format!("{sign}{m}m"),
        (h, m, _) => format!("{sign}{h}h{m:02}m"),
    }
}

/// A proto enum value's name without its type prefix, lower case: `CLASS_A` → `a`.
pub fn label(name: &str, prefix: &str) -> String {
    name.strip_prefix(prefix).unwrap_or(name).to_lowercase()
}

/// `yes`/`no`.
pub fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_string()
}

/// Basis points as a percentage: 1234 → `12.34%`.
pub fn percent(bp: u32) -> String {
    format!("{}.{:02}%", bp / 100, bp % 100)
}

/// Integer fen as yuan: 4500 → `45.00`.
pub fn yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let f = fen.unsigned_abs();
    format!("{sign}{}.{:02}", f / 100, f % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns() {
        let mut t = Table::new(&["A", "LONG"]);
        t.row(vec!["xyz".into(), "1".into()]);
        assert_eq!(t.render(), "A    LONG\nxyz  1\n");
        assert_eq!(Table::new(&["A"]).render(), "(none)\n");
    }

    #[test]
    fn json_uses_the_proto3_mapping() {
        let msg = redress_proto::v1::AssignResponse {
            department_id: "dept-network".into(),
            assignee_id: "handler-1".into(),
        };
        let text = json("AssignResponse", &msg).expect("json");
        let v: serde_json::Value = serde_json::from_str(&text).expect("parse");
        assert_eq!(v["assigneeId"], "handler-1");
    }

    #[test]
    fn choices_name_an_enum_s_values_without_its_placeholder() {
        assert_eq!(
            choices("SLA_CLOCK_"),
            [
                "acceptance",
                "first_feedback",
                "completion",
                "intermediate_result",
                "revisit",
                "confirmation"
            ]
        );
        assert_eq!(choices("CLASS_"), ["a", "b", "c", "d"]);
        assert!(choices("NO_SUCH_ENUM_").is_empty());
    }

    #[test]
    fn numbers_read_like_money_and_rates() {
        assert_eq!(yuan(4500), "45.00");
        assert_eq!(yuan(-5), "-0.05");
        assert_eq!(percent(1234), "12.34%");
        assert_eq!(label("CLASS_A", "CLASS_"), "a");
        assert_eq!(
            duration(Some(&Duration {
                seconds: -3720,
                nanos: 0
            })),
            "-1h02m"
        );
    }
}
