use super::*;

/// Every key path in a TOML value, arrays of tables included (by index).
fn key_paths(value: &toml::Value, prefix: &str, out: &mut Vec<String>) {
    match value {
        toml::Value::Table(table) => {
            for (key, value) in table {
                let path = format!("{prefix}.{key}");
                out.push(path.clone());
                key_paths(value, &path, out);
            }
        }
        toml::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                key_paths(item, &format!("{prefix}[{i}]"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn embedded_file_equals_the_code_defaults() {
    let from_file = Policy::from_toml_str(DEFAULT_POLICY_TOML).unwrap();
    assert_eq!(from_file, Policy::default());
}

#[test]
fn embedded_file_names_every_setting() {
    let file: toml::Value = toml::from_str(DEFAULT_POLICY_TOML).unwrap();
    let code: toml::Value = toml::Value::try_from(Policy::default()).unwrap();
    let (mut in_file, mut in_code) = (Vec::new(), Vec::new());
    key_paths(&file, "", &mut in_file);
    key_paths(&code, "", &mut in_code);
    in_file.sort();
    in_code.sort();
    assert_eq!(in_file, in_code);
}

#[test]
fn defaults_match_domain_md() {
    let p = Policy::default();
    assert_eq!(p.completion_limit(Class::A), Duration::hours(8));
    assert_eq!(p.completion_limit(Class::B), Duration::hours(24));
    assert_eq!(p.completion_limit(Class::C), Duration::hours(48));
    assert_eq!(p.completion_limit(Class::D), Duration::hours(48));
    assert_eq!(
        p.feedback_limit(Class::A),
        FeedbackLimit::Within(Duration::days(3))
    );
    assert_eq!(p.feedback_limit(Class::C), FeedbackLimit::SameDay);
    assert_eq!(p.feedback_limit(Class::D), FeedbackLimit::SameDay);
    assert_eq!(p.limits.acceptance, Duration::hours(24));
    assert_eq!(p.limits.warning_share, 0.75);
    assert_eq!(*p.penalties.per_class.get(Class::D), Money::from_fen(5_000));
    assert_eq!(p.complaint_rate.threshold_bp, 80);
    assert_eq!(p.categories.len(), 11);
    assert!(p.category("billing_dispute").is_some());
    assert!(p.category("weather").is_none());
    p.validate().unwrap();
}

#[test]
fn a_partial_file_overrides_only_what_it_names() {
    let p = Policy::from_toml_str(
        r#"
        [limits.completion]
        A = "6h"
        [calendar]
        business_day_end = "17:30"
        "#,
    )
    .unwrap();
    assert_eq!(p.completion_limit(Class::A), Duration::hours(6));
    assert_eq!(p.completion_limit(Class::B), Duration::hours(24));
    assert_eq!(
        p.calendar.business_day_end,
        NaiveTime::from_hms_opt(17, 30, 0).unwrap()
    );
    assert_eq!(p.calendar.timezone, Policy::default().calendar.timezone);
    assert_eq!(p.penalties, Policy::default().penalties);
    assert_eq!(Policy::from_toml_str("").unwrap(), Policy::default());
}

#[test]
fn unknown_keys_and_bad_values_are_refused() {
    for bad in [
        "[limits]\ncompletoin = \"8h\"",
        "[limits.completion]\nE = \"8h\"",
        "[limits.completion]\nA = \"soon\"",
        "[limits.first_feedback]\nC = \"same day-ish\"",
        "[calendar]\ntimezone = \"Asia/Shanghai\"",
        "[calendar]\nbusiness_day_end = \"6pm\"",
        "[revisit]\ngeneral_classes = [\"E\"]",
        "colour = \"blue\"",
    ] {
        assert!(
            matches!(Policy::from_toml_str(bad), Err(PolicyError::Parse(_))),
            "{bad}"
        );
    }
}

#[test]
fn inconsistent_settings_are_all_listed() {
    let err = Policy::from_toml_str(
        r#"
        [limits]
        warning_share = 1.0
        intermediate_share = 0.0
        [limits.completion]
        A = "0s"
        [penalties]
        repeat_multiplier = 0
        [complaint_rate]
        bands = [{ up_to_bp = 90, penalty_fen = 1 }, { up_to_bp = 85, penalty_fen = 2 }]
        above_default_fen = 10
        [escalation]
        ladder = []
        [fields]
        description = 0
        [[categories]]
        code = "Bad Code"
        name = ""
        "#,
    )
    .unwrap_err();
    let PolicyError::Invalid(problems) = err else {
        panic!("expected Invalid, got {err}");
    };
    let all = problems.join("\n");
    for expected in [
        "limits.warning_share",
        "limits.intermediate_share",
        "limits.completion.A",
        "penalties.repeat_multiplier",
        "complaint_rate.bands must ascend",
        "above_min_fen <= above_default_fen",
        "escalation.ladder",
        "fields.description",
        "\"Bad Code\"",
        "needs a name",
    ] {
        assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
    }
}

#[test]
fn same_day_spellings_and_durations() {
    let p = Policy::from_toml_str("[limits.first_feedback]\nA = \"Same-Day\"\nC = \"4h\"").unwrap();
    assert_eq!(p.feedback_limit(Class::A), FeedbackLimit::SameDay);
    assert_eq!(
        p.feedback_limit(Class::C),
        FeedbackLimit::Within(Duration::hours(4))
    );
}

#[test]
fn written_toml_reads_back_identically() {
    let text = Policy::default().to_toml_string().unwrap();
    assert_eq!(Policy::from_toml_str(&text).unwrap(), Policy::default());
}
