//! Personal data kept out of logs.
//!
//! A complaint record carries the customer's name, phone number and e-mail (DOMAIN §1). Staff
//! need them; log files, which are shipped, kept and read far more widely, must not hold them.
//! Two layers enforce that:
//!
//! - **Structurally:** the types that hold personal data ([`crate::Phone`], [`crate::Email`],
//!   [`crate::record::Customer`], and the generated `Customer` message) print masked values from
//!   `Debug`, so `?request` in a log line cannot leak them.
//! - **As a backstop:** every log line passes through [`mask_phone_numbers`] on its way out, so a
//!   phone number that reaches a log as plain text (an error message quoting input, say) is
//!   masked too. Names cannot be recognised in free text; they are covered by the first layer.

use std::borrow::Cow;

/// Masks one value: keeps the first and last character of a short value (a name), and the first
/// three and last four characters of a long one (a phone number), as Chinese service desks
/// print them (`138****8000`).
pub fn mask(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    match chars.len() {
        0 => String::new(),
        1 | 2 => "*".repeat(chars.len()),
        n if n >= 8 => {
            let head: String = chars[..3].iter().collect();
            let tail: String = chars[n - 4..].iter().collect();
            format!("{head}{}{tail}", "*".repeat(n - 7))
        }
        n => format!("{}{}{}", chars[0], "*".repeat(n - 2), chars[n - 1]),
    }
}

/// Fewest digits treated as a phone number in free text. Local numbers have eight digits in
/// most Chinese cities (seven in a few); mobiles eleven. Seven would also mask every count
/// of a million or more (`max_payload=1048576`), which operators read in logs all the time.
const MIN_PHONE_DIGITS: usize = 8;
/// E.164's most.
const MAX_PHONE_DIGITS: usize = 15;

/// Masks every phone number in a line of text.
///
/// A phone number here is a run of 8–15 digits, optionally led by `+` and split by single spaces
/// or dashes (`138 0013 8000`, `0755-12345678`), that does not touch a letter, digit, `_`, `.`,
/// `:` or `-` on either side. The boundary rule keeps identifiers, trace ids, UUIDs, timestamps
/// and decimals intact: their digit runs always touch a letter, a dash or a colon. The price is
/// that a bare count of ten million or more in a log message is masked as well.
pub fn mask_phone_numbers(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        let starts_here = (bytes[i].is_ascii_digit()
            || (bytes[i] == b'+' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)))
            && (i == 0 || !is_joined(bytes[i - 1]));
        if !starts_here {
            i += 1;
            continue;
        }
        let (end, digits) = phone_run(bytes, i);
        let bounded = end == bytes.len() || !is_joined(bytes[end]);
        if bounded && (MIN_PHONE_DIGITS..=MAX_PHONE_DIGITS).contains(&digits) {
            let out = out.get_or_insert_with(|| String::with_capacity(text.len()));
            out.push_str(&text[copied..i]);
            out.push_str(&mask(&text[i..end]));
            copied = end;
        }
        // Skip the whole run either way: a suffix of a rejected run is no phone number.
        i = end.max(i + 1);
    }
    match out {
        None => Cow::Borrowed(text),
        Some(mut out) => {
            out.push_str(&text[copied..]);
            Cow::Owned(out)
        }
    }
}

/// Characters that make a digit run part of something bigger (an id, a time, a decimal).
fn is_joined(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-' | b'/')
}

/// From `start` (a digit or a `+` before one): where the run ends and how many digits it has.
/// Single spaces or dashes between digits belong to the run.
fn phone_run(bytes: &[u8], start: usize) -> (usize, usize) {
    let mut i = start + usize::from(bytes[start] == b'+');
    let mut digits = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            digits += 1;
            i += 1;
        } else if matches!(bytes[i], b' ' | b'-')
            && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)
        {
            i += 1;
        } else {
            break;
        }
    }
    (i, digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_names_and_phones() {
        assert_eq!(mask("张三丰"), "张*丰");
        assert_eq!(mask("+8613800138000"), "+86*******8000");
        assert_eq!(mask("李"), "*");
        assert_eq!(mask(""), "");
    }

    #[test]
    fn masks_phone_numbers_in_text() {
        assert_eq!(
            mask_phone_numbers("callback 13800138000 now"),
            "callback 138****8000 now"
        );
        assert_eq!(
            mask_phone_numbers("tel=+8613800138000,"),
            "tel=+86*******8000,"
        );
        assert_eq!(
            mask_phone_numbers("\"phone\":\"138 0013 8000\""),
            "\"phone\":\"138******8000\""
        );
        assert_eq!(mask_phone_numbers("0755-12345678"), "075******5678");
        assert_eq!(mask_phone_numbers("电话13800138000。"), "电话138****8000。");
    }

    #[test]
    fn leaves_ids_times_and_small_numbers_alone() {
        for text in [
            "trace_id=4bf92f3577b34da6a3ce929d0e0e4736",
            "cmp_01JABCDEF0123456789ABCDEFG",
            "12345678-1234-1234-1234-123456789012",
            "at 2026-11-24T02:12:05.123456789Z",
            "2026-11-24 02:12:05",
            "REDRESS_EVENTS:12345678",
            "took 0.12345678 s",
            "batch of 500 messages, 10086 is a short number",
            "connected max_payload=1048576",
            "",
        ] {
            assert_eq!(mask_phone_numbers(text), text, "{text}");
        }
    }

    #[test]
    fn debug_of_personal_types_is_masked() {
        use crate::record::{Customer, ReplyChannel, SubmissionDraft};
        let customer = Customer {
            name: "王小芳".into(),
            phone: crate::Phone::parse("13800138000").expect("phone"),
            account: None,
            email: Some(crate::Email::parse("wang.fang@example.com").expect("email")),
            preferred_reply: ReplyChannel::Phone,
        };
        let draft = SubmissionDraft {
            customer_name: "王小芳".into(),
            customer_phone: "13800138000".into(),
            customer_email: Some("wang.fang@example.com".into()),
            ..Default::default()
        };
        for printed in [format!("{customer:?}"), format!("{draft:?}")] {
            for secret in ["王小芳", "13800138000", "wang.fang@example.com"] {
                assert!(!printed.contains(secret), "{secret} in {printed}");
            }
            assert!(printed.contains("王*芳"), "{printed}");
        }
    }
}
