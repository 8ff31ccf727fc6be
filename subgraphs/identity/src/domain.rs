//! Identity's vocabulary: the kinds and states of principals, as the schema shows them and as they are stored
//! (text, through [`kernel::text_enum!`]). Pure code.

// Stored as `User` / `Service`, the form events carry too.
/// A person (`USER`) or an integration (`SERVICE`).
#[derive(async_graphql::Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrincipalKind {
    /// A person.
    User,
    /// An integration: CI, a backend, another system.
    Service,
}

impl PrincipalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::User => "User",
            PrincipalKind::Service => "Service",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "User" => Some(PrincipalKind::User),
            "Service" => Some(PrincipalKind::Service),
            _ => None,
        }
    }
}
kernel::text_enum!(PrincipalKind);

// Stored as `Active` / `Disabled`.
/// Whether a principal's credentials carry permissions.
#[derive(async_graphql::Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrincipalStatus {
    Active,
    /// Its tokens and clients stop carrying permissions; live sessions end.
    Disabled,
}

impl PrincipalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalStatus::Active => "Active",
            PrincipalStatus::Disabled => "Disabled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "Active" => Some(PrincipalStatus::Active),
            "Disabled" => Some(PrincipalStatus::Disabled),
            _ => None,
        }
    }
}
kernel::text_enum!(PrincipalStatus);

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
