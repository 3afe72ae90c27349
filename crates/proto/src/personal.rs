//! `Debug` for the messages that hold a customer's personal data, masked the same way as the
//! domain types ([`redress_domain::personal`]), so logging a request never leaks them.

use std::fmt;

use redress_domain::personal::mask;

use crate::v1::Customer;

impl fmt::Debug for Customer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Customer")
            .field("name", &mask(&self.name))
            .field("phone", &mask(&self.phone))
            .field("account", &self.account)
            .field("email", &mask(&self.email))
            .field("preferred_reply", &self.preferred_reply)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use crate::v1;

    #[test]
    fn a_logged_request_shows_no_personal_data() {
        let req = v1::SubmitRequest {
            details: Some(v1::ComplaintDetails {
                customer: Some(v1::Customer {
                    name: "王小芳".into(),
                    phone: "13800138000".into(),
                    email: "wang.fang@example.com".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        };
        let printed = format!("{req:?}");
        for secret in ["王小芳", "13800138000", "wang.fang@example.com"] {
            assert!(!printed.contains(secret), "{secret} in {printed}");
        }
        assert!(printed.contains("138****8000"), "{printed}");
    }
}
