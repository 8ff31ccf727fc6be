//! Editions: versioned bundles of a quota template and a feature set that tenants subscribe to.
//! Draft → Published → Retired; a published edition is immutable (a change is a new version).

pub mod schema;
pub mod store;

use std::collections::{BTreeMap, HashSet};

use kernel::{Error, Result};
use sqlx::types::Json;

use crate::domain;
use crate::model::{QuotaLimit, QuotaSpec, QuotaTemplate};

/// A quota template from its input lines: keys checked, limits non-negative, no key twice.
pub fn quota_template(items: Vec<QuotaLimit>) -> Result<Json<QuotaTemplate>> {
    let mut out = BTreeMap::new();
    for item in items {
        let key = domain::key("quotaTemplate.key", &item.key, 64)?;
        let limit = domain::non_negative("quotaTemplate.limit", item.limit)?;
        if out.insert(key.clone(), QuotaSpec { limit, period: item.period }).is_some() {
            return Err(Error::bad_input("quotaTemplate", format!("quota `{key}` appears twice")));
        }
    }
    Ok(Json(out))
}

/// A feature set from its input: keys checked, duplicates dropped, at most 200.
pub fn feature_set(items: Vec<String>) -> Result<Vec<String>> {
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let key = domain::key("featureSet", &item, 64)?;
        if seen.insert(key.clone()) {
            out.push(key);
        }
    }
    if out.len() > 200 {
        return Err(Error::bad_input("featureSet", "at most 200 features"));
    }
    Ok(out)
}
