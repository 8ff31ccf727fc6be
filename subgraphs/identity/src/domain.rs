//! Identity's vocabulary: the kinds and states of principals, as the schema shows them and as they are stored
//! (text, through [`kernel::text_enum!`]). Pure code.

// Stored as `User` / `Service`, the form events carry too.
kernel::text_enum! {
    /// A person (`USER`) or an integration (`SERVICE`).
    #[derive(async_graphql::Enum, Clone, Copy, Debug, PartialEq, Eq)]
    pub enum PrincipalKind {
        /// A person.
        User = "User",
        /// An integration: CI, a backend, another system.
        Service = "Service",
    }
}

// Stored as `Active` / `Disabled`.
kernel::text_enum! {
    /// Whether a principal's credentials carry permissions.
    #[derive(async_graphql::Enum, Clone, Copy, Debug, PartialEq, Eq)]
    pub enum PrincipalStatus {
        Active = "Active",
        /// Its tokens and clients stop carrying permissions; live sessions end.
        Disabled = "Disabled",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_text_round_trips() {
        for k in [PrincipalKind::User, PrincipalKind::Service] {
            assert_eq!(PrincipalKind::parse(k.as_str()), Some(k));
        }
        for s in [PrincipalStatus::Active, PrincipalStatus::Disabled] {
            assert_eq!(PrincipalStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(PrincipalKind::parse("USER"), None);
        assert_eq!(PrincipalStatus::parse("active"), None);
    }
}
