//! The one pager of every list RPC (issue 16): keyset pages. A page ends at the sort key of its
//! last row and the next starts after it, so page 1,000 costs what page 1 costs (no OFFSET),
//! and a row inserted or moved meanwhile (a queue changes all day) neither repeats a row nor
//! skips one on the next page.
//!
//! A list declares the shape of its sort key ([`Kind`]s, in `ORDER BY` order); [`Page::read`]
//! checks a token against it, so a token from another list is refused naming
//! `page.page_token`; the query binds the cursor's parts ([`Page::time`], [`Page::text`] …)
//! into a row comparison `(a, b, …) > ($1, $2, …)`, fetches [`Page::fetch`] rows, and
//! [`Page::finish`] keeps the page and writes the next token from the last row's key.
//!
//! The token is opaque to callers: `<kind><value>` parts joined by `|`.

use chrono::{DateTime, Utc};
use redress_proto::v1;

use crate::error::Error;

/// The type of one part of a sort key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Time,
    Text,
    Bool,
}

/// One part of a row's sort key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Key {
    Time(DateTime<Utc>),
    Text(String),
    Bool(bool),
}

impl Key {
    fn kind(&self) -> Kind {
        match self {
            Key::Time(_) => Kind::Time,
            Key::Text(_) => Kind::Text,
            Key::Bool(_) => Kind::Bool,
        }
    }

    fn encode(&self) -> String {
        match self {
            Key::Time(t) => format!("t{}", t.timestamp_micros()),
            // `%` and `|` escaped, so any text survives.
            Key::Text(s) => format!("s{}", s.replace('%', "%25").replace('|', "%7C")),
            Key::Bool(b) => format!("b{}", u8::from(*b)),
        }
    }

    fn decode(raw: &str) -> Option<Key> {
        let (tag, value) = raw.split_at_checked(1)?;
        match tag {
            "t" => DateTime::from_timestamp_micros(value.parse().ok()?).map(Key::Time),
            "s" => Some(Key::Text(value.replace("%7C", "|").replace("%25", "%"))),
            "b" => match value {
                "0" => Some(Key::Bool(false)),
                "1" => Some(Key::Bool(true)),
                _ => None,
            },
            _ => None,
        }
    }
}

/// The token that continues a list after a row with sort key `key`.
pub fn token(key: &[Key]) -> String {
    key.iter().map(Key::encode).collect::<Vec<_>>().join("|")
}

/// The sort key a token continues after, if it has the given shape.
pub fn parse(token: &str, shape: &[Kind]) -> Option<Vec<Key>> {
    let key: Vec<Key> = token.split('|').map(Key::decode).collect::<Option<_>>()?;
    (key.len() == shape.len() && key.iter().zip(shape).all(|(k, s)| k.kind() == *s)).then_some(key)
}

/// A list request's page: how many rows, and after which sort key.
#[derive(Clone, Debug)]
pub struct Page {
    size: i64,
    after: Option<Vec<Key>>,
}

/// Rows a page holds when the request does not say.
pub const DEFAULT_SIZE: u32 = 50;

impl Page {
    /// Reads `req` for a list whose sort key has `shape`; at most `max` rows a page.
    pub fn read(req: Option<&v1::PageRequest>, max: u32, shape: &[Kind]) -> Result<Page, Error> {
        let size = match req.map_or(0, |p| p.page_size) {
            0 => DEFAULT_SIZE.min(max),
            n => n.min(max),
        };
        let after = match req.map_or("", |p| p.page_token.as_str()) {
            "" => None,
            t => Some(parse(t, shape).ok_or_else(|| {
                Error::invalid("page.page_token", "is not a token this list issued")
            })?),
        };
        Ok(Page {
            size: i64::from(size),
            after,
        })
    }

    /// The `LIMIT` to fetch: one row more than the page, to know whether another follows.
    pub fn fetch(&self) -> i64 {
        self.size + 1
    }

    /// Whether this is a later page (the query adds its row comparison).
    pub fn is_continued(&self) -> bool {
        self.after.is_some()
    }

    fn part(&self, i: usize) -> Option<&Key> {
        self.after.as_ref().and_then(|k| k.get(i))
    }

    /// Part `i` of the cursor when it is a time (None on the first page).
    pub fn time(&self, i: usize) -> Option<DateTime<Utc>> {
        match self.part(i) {
            Some(Key::Time(t)) => Some(*t),
            _ => None,
        }
    }

    /// Part `i` of the cursor when it is text (None on the first page).
    pub fn text(&self, i: usize) -> Option<String> {
        match self.part(i) {
            Some(Key::Text(s)) => Some(s.clone()),
            _ => None,
        }
    }

    /// Part `i` of the cursor when it is a flag (None on the first page).
    pub fn flag(&self, i: usize) -> Option<bool> {
        match self.part(i) {
            Some(Key::Bool(b)) => Some(*b),
            _ => None,
        }
    }

    /// Keeps the page's rows out of those fetched (up to [`Page::fetch`]) and gives the next
    /// page's token — empty on the last page — from the last kept row's sort key.
    pub fn finish<R, E>(
        &self,
        mut rows: Vec<R>,
        key: impl Fn(&R) -> Result<Vec<Key>, E>,
    ) -> Result<(Vec<R>, String), E> {
        let size = usize::try_from(self.size).unwrap_or(usize::MAX);
        if rows.len() <= size {
            return Ok((rows, String::new()));
        }
        rows.truncate(size);
        let next = match rows.last() {
            Some(last) => token(&key(last)?),
            None => String::new(),
        };
        Ok((rows, next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHAPE: [Kind; 3] = [Kind::Time, Kind::Text, Kind::Bool];

    fn at() -> DateTime<Utc> {
        DateTime::from_timestamp_micros(1_795_477_308_123_456).expect("time")
    }

    #[test]
    fn tokens_round_trip_any_text_and_garbage_or_another_shape_is_refused() {
        let key = vec![
            Key::Time(at()),
            Key::Text("odd|id%7C".into()),
            Key::Bool(true),
        ];
        assert_eq!(parse(&token(&key), &SHAPE), Some(key));
        assert_eq!(parse("nope", &SHAPE), None);
        assert_eq!(parse("t12x|scmp|b1", &SHAPE), None);
        assert_eq!(parse(&token(&[Key::Text("cmp".into())]), &SHAPE), None);
        let req = v1::PageRequest {
            page_size: 10,
            page_token: "t1|scmp".into(),
        };
        let err = Page::read(Some(&req), 100, &SHAPE).unwrap_err();
        assert!(err.to_string().contains("page.page_token"), "{err}");
    }

    #[test]
    fn a_page_keeps_its_size_and_continues_after_its_last_row() {
        let page = Page::read(None, 20, &[Kind::Text]).expect("page");
        assert_eq!(page.fetch(), 21);
        assert!(!page.is_continued());
        let rows: Vec<String> = (0..21).map(|i| format!("r{i:02}")).collect();
        let (kept, next) = page
            .finish(rows, |r| Ok::<_, ()>(vec![Key::Text(r.clone())]))
            .expect("finish");
        assert_eq!(kept.len(), 20);
        let req = v1::PageRequest {
            page_size: 0,
            page_token: next,
        };
        let second = Page::read(Some(&req), 20, &[Kind::Text]).expect("second");
        assert_eq!(second.text(0).as_deref(), Some("r19"));
        let (last, next) = second
            .finish(vec!["r20".to_owned()], |r| {
                Ok::<_, ()>(vec![Key::Text(r.clone())])
            })
            .expect("finish");
        assert_eq!(
            (last.len(), next.as_str()),
            (1, ""),
            "the last page has no token"
        );
    }

    #[test]
    fn sizes_default_and_are_capped() {
        let big = v1::PageRequest {
            page_size: 10_000,
            page_token: String::new(),
        };
        assert_eq!(Page::read(Some(&big), 500, &[]).expect("page").fetch(), 501);
        assert_eq!(Page::read(None, 500, &[]).expect("page").fetch(), 51);
    }
}
