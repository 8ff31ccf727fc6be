//! Tenancy's vocabulary: lifecycle states, validated inputs, periods. Pure code, unit-tested here.

use chrono::{DateTime, Datelike, TimeZone, Utc};
use kernel::error::{clip, text};
use kernel::{Error, Result};

kernel::text_enum! {
    /// Lifecycle of a tenant. Provisioning → Active ⇄ Suspended, and any of them → Retired (terminal).
    #[derive(async_graphql::Enum, Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
    pub enum TenantStatus {
        /// Created; the other domains are still setting it up.
        Provisioning = "Provisioning",
        Active = "Active",
        /// Blocked from use, data kept; can be reactivated.
        Suspended = "Suspended",
        /// Gone for good. Rows are kept for audit and legal hold; nothing changes them any more.
        Retired = "Retired",
    }
}

impl TenantStatus {
    /// Whether the lifecycle allows going from `self` to `to`.
    pub fn can_become(self, to: TenantStatus) -> bool {
        use TenantStatus::*;
        matches!(
            (self, to),
            (Provisioning, Active)
                | (Active, Suspended)
                | (Suspended, Active)
                | (Provisioning | Active | Suspended, Retired)
        )
    }

    /// `Ok` if the transition is legal, else a `CONFLICT` naming both states.
    pub fn transition(self, to: TenantStatus) -> Result<TenantStatus> {
        if self.can_become(to) {
            Ok(to)
        } else {
            Err(Error::conflict(format!("a tenant cannot go from {} to {}", self.as_str(), to.as_str())))
        }
    }
}

kernel::text_enum! {
    /// Where a tenant's rows live.
    #[derive(async_graphql::Enum, Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
    #[serde(rename_all = "lowercase")]
    pub enum IsolationModel {
        /// In the shared databases, isolated by row-level security.
        #[default]
        Shared = "shared",
        /// In databases of its own, one per subgraph.
        Dedicated = "dedicated",
    }
}

kernel::text_enum! {
    /// Draft → Published → Retired. Published editions are immutable; a change is a new version.
    #[derive(async_graphql::Enum, Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
    pub enum EditionStatus {
        Draft = "Draft",
        Published = "Published",
        Retired = "Retired",
    }
}

kernel::text_enum! {
    /// The window a quota limit applies to.
    #[derive(async_graphql::Enum, Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
    pub enum Period {
        /// A UTC calendar day.
        Day = "Day",
        /// A UTC calendar month.
        Month = "Month",
        /// Never resets.
        Lifetime = "Lifetime",
    }
}

impl Period {
    /// Start of the period containing `at`.
    pub fn start(self, at: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Period::Day => Utc.with_ymd_and_hms(at.year(), at.month(), at.day(), 0, 0, 0).unwrap(),
            Period::Month => Utc.with_ymd_and_hms(at.year(), at.month(), 1, 0, 0, 0).unwrap(),
            Period::Lifetime => DateTime::<Utc>::UNIX_EPOCH,
        }
    }

    /// Start of the next period, or `None` for `Lifetime`.
    pub fn end(self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let start = self.start(at);
        match self {
            Period::Day => Some(start + chrono::Duration::days(1)),
            Period::Month => {
                let (y, m) =
                    if start.month() == 12 { (start.year() + 1, 1) } else { (start.year(), start.month() + 1) };
                Some(Utc.with_ymd_and_hms(y, m, 1, 0, 0, 0).unwrap())
            }
            Period::Lifetime => None,
        }
    }
}

/// Lower-case identifiers for editions, flags, quota keys and regions: letters, digits, `-`, `_`, `.`,
/// starting with a letter, at most `max` characters.
pub fn key(field: &str, raw: &str, max: usize) -> Result<String> {
    let s = raw.trim();
    let ok = !s.is_empty()
        && s.len() <= max
        && s.as_bytes()[0].is_ascii_lowercase()
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(s.to_owned())
    } else {
        Err(Error::bad_input(
            field,
            format!(
                "{field} `{}` must be 1 to {max} lower-case letters, digits, '-', '_' or '.', starting with a letter",
                clip(raw, 80)
            ),
        ))
    }
}

pub fn display_name(raw: &str) -> Result<String> {
    text("displayName", raw, 200)
}

pub fn edition_name(raw: &str) -> Result<String> {
    text("name", raw, 200)
}

pub fn region(raw: &str) -> Result<String> {
    key("region", raw, 32)
}

pub fn non_negative(field: &str, n: i64) -> Result<i64> {
    if n < 0 {
        Err(Error::bad_input(field, format!("{field} must not be negative")))
    } else {
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_allows_only_its_transitions() {
        use TenantStatus::*;
        let all = [Provisioning, Active, Suspended, Retired];
        let legal = [
            (Provisioning, Active),
            (Active, Suspended),
            (Suspended, Active),
            (Provisioning, Retired),
            (Active, Retired),
            (Suspended, Retired),
        ];
        for from in all {
            for to in all {
                assert_eq!(from.can_become(to), legal.contains(&(from, to)), "{from:?} -> {to:?}");
            }
        }
        assert_eq!(Retired.transition(Active).unwrap_err().code(), kernel::Code::Conflict);
    }

    #[test]
    fn periods_start_and_end_on_utc_boundaries() {
        let at = Utc.with_ymd_and_hms(2026, 12, 31, 23, 59, 0).unwrap();
        assert_eq!(Period::Day.start(at), Utc.with_ymd_and_hms(2026, 12, 31, 0, 0, 0).unwrap());
        assert_eq!(Period::Month.end(at), Some(Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap()));
        assert_eq!(Period::Lifetime.end(at), None);
    }

    #[test]
    fn keys_are_validated() {
        assert_eq!(key("k", " api-calls ", 64).unwrap(), "api-calls");
        for bad in ["", "Api", "1x", "a b", "a/b"] {
            assert_eq!(key("k", bad, 64).unwrap_err().code(), kernel::Code::BadUserInput, "{bad}");
        }
        assert!(key("k", &"a".repeat(65), 64).is_err());
    }
}
