//! Keyset page tokens: a page ends at `(time, id)` and the next starts after it, so page 1,000
//! costs what page 1 costs (no OFFSET). The token is opaque to callers: `<micros>/<id>`.

use chrono::{DateTime, Utc};

/// The token that continues a list after the row at `(at, id)`.
pub fn token(at: DateTime<Utc>, id: &str) -> String {
    format!("{}/{id}", at.timestamp_micros())
}

/// The `(time, id)` a token continues after; `None` when it is not a token [`token`] made.
pub fn parse(token: &str) -> Option<(DateTime<Utc>, String)> {
    let (micros, id) = token.split_once('/')?;
    let at = DateTime::from_timestamp_micros(micros.parse().ok()?)?;
    Some((at, id.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_garbage_is_refused() {
        let at = DateTime::from_timestamp_micros(1_795_477_308_123_456).expect("time");
        assert_eq!(parse(&token(at, "cmp_x")), Some((at, "cmp_x".to_owned())));
        assert_eq!(parse("nope"), None);
        assert_eq!(parse("12x/cmp"), None);
    }
}
