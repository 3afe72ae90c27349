//! The complaint categories.

use super::*;

/// A complaint category (DOMAIN §2, [004 §2.1, 002 slide 15]). The code is stable and stored;
/// the names are for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Category {
    /// Stable snake_case code, e.g. `billing_dispute`.
    pub code: String,
    /// English display name.
    pub name: String,
    /// Chinese display name.
    #[serde(default)]
    pub name_zh: String,
    /// Which line of business the category belongs to (e.g. `telecom`, `car_service`), so a
    /// deployment can show only its own.
    #[serde(default)]
    pub industry: String,
}

impl Category {
    fn new(industry: &str, code: &str, name: &str, name_zh: &str) -> Self {
        Category {
            code: code.to_owned(),
            name: name.to_owned(),
            name_zh: name_zh.to_owned(),
            industry: industry.to_owned(),
        }
    }
}

/// DOMAIN §2: "telecom — network quality, billing dispute, service handling, value-added service,
/// service attitude; car service — product fault, repair technique, repair cost, reception,
/// purchase, parts."
pub(super) fn default_categories() -> Vec<Category> {
    vec![
        Category::new("telecom", "network_quality", "Network quality", "网络质量"),
        Category::new("telecom", "billing_dispute", "Billing dispute", "计费争议"),
        Category::new(
            "telecom",
            "service_handling",
            "Service handling",
            "业务办理",
        ),
        Category::new(
            "telecom",
            "value_added_service",
            "Value-added service",
            "增值服务",
        ),
        Category::new(
            "telecom",
            "service_attitude",
            "Service attitude",
            "服务态度",
        ),
        Category::new(
            "car_service",
            "product_fault",
            "Product fault",
            "产品投诉(故障)",
        ),
        Category::new(
            "car_service",
            "repair_technique",
            "Repair technique",
            "修理技术投诉",
        ),
        Category::new("car_service", "repair_cost", "Repair cost", "修理费用投诉"),
        Category::new("car_service", "reception", "Reception", "接待投诉"),
        Category::new("car_service", "purchase", "Purchase", "购买投诉"),
        Category::new("car_service", "parts", "Parts", "零件投诉"),
    ]
}

pub(super) fn check_categories(categories: &[Category], problems: &mut Vec<String>) {
    for category in categories {
        if !is_code(&category.code) {
            problems.push(format!(
                "categories: code {:?} is not a snake_case code",
                category.code
            ));
        }
        if category.name.trim().is_empty() {
            problems.push(format!("categories: {:?} needs a name", category.code));
        }
    }
    if has_duplicates(categories.iter().map(|c| &c.code)) {
        problems.push("categories: a code appears twice".to_owned());
    }
}
