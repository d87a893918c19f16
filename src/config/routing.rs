//! `[routing]` and `[[routes]]`: how a notification finds its region, by its country, by
//! the first route that matches, or by its source's own region.

use std::collections::{BTreeMap, HashMap};

use super::raw::{RawRoute, RawRouting};
use super::region::{self, RegionSettings};
use super::source::SourceSettings;
use super::values::{example_region, json_pointers};
use super::{ConfigError, WebhookUrl};
use crate::model::SourceKind;

#[derive(Debug, Clone)]
pub struct RoutingSettings {
    /// The top-level field of the webhook that holds the region key (a country).
    pub field: String,
    /// Region for keys no region claims; `None` makes such a webhook a 422.
    pub default_region: Option<String>,
    /// Lower-cased country → region name.
    pub countries: HashMap<String, String>,
}

impl RoutingSettings {
    /// The region for a country, case-insensitively, falling back to `default_region`.
    pub fn region_for(&self, country: &str) -> Option<&str> {
        self.countries
            .get(&country.trim().to_lowercase())
            .or(self.default_region.as_ref())
            .map(String::as_str)
    }
}

/// Where a matching route sends a notification.
#[derive(Debug, Clone, PartialEq)]
pub enum RouteTarget {
    /// A configured region, with its rate limit.
    Region(String),
    /// A one-off webhook, with the default rate limit.
    Url(WebhookUrl),
}

/// One `[[routes]]` table.
#[derive(Debug, Clone)]
pub struct Route {
    /// Only notifications of this source; `None`: any source.
    pub source: Option<String>,
    /// JSON pointer → expected value, compared as lower-cased strings; all must hold.
    pub matches: Vec<(String, String)>,
    /// Where it sends.
    pub target: RouteTarget,
}

/// `[routing]`, checked, with the country table the regions claimed.
pub(super) fn routing_settings(
    raw: &RawRouting,
    countries: HashMap<String, String>,
    regions: &BTreeMap<String, RegionSettings>,
) -> Result<RoutingSettings, ConfigError> {
    if let Some(default) = &raw.default_region {
        if !regions.contains_key(default) {
            return Err(ConfigError::invalid(
                "routing.default_region",
                default,
                "names no [regions.…] table",
                &example_region(regions),
            ));
        }
    }
    if raw.field.trim().is_empty() {
        return Err(ConfigError::invalid(
            "routing.field",
            "",
            "must name a field",
            "\"country\"",
        ));
    }
    let routing = RoutingSettings {
        field: raw.field.clone(),
        default_region: raw.default_region.clone(),
        countries,
    };
    Ok(routing)
}

/// `[[routes]]`, checked, in file order.
pub(super) fn routes(
    raw: &[RawRoute],
    regions: &BTreeMap<String, RegionSettings>,
    sources: &BTreeMap<String, SourceSettings>,
) -> Result<Vec<Route>, ConfigError> {
    raw.iter()
        .enumerate()
        .map(|(i, r)| route(i, r, regions, sources))
        .collect()
}

fn route(
    i: usize,
    r: &RawRoute,
    regions: &BTreeMap<String, RegionSettings>,
    sources: &BTreeMap<String, SourceSettings>,
) -> Result<Route, ConfigError> {
    let key = |field: &str| format!("routes[{i}].{field}");
    if let Some(source) = &r.source {
        let Some(own) = sources.get(source) else {
            return Err(ConfigError::invalid(
                &key("source"),
                source,
                "names no [sources.…] table",
                "\"salesforce\"",
            ));
        };
        // A route that can never apply is a mistake worth refusing, not a silent no-op.
        if own.kind == SourceKind::Rainforest {
            return Err(ConfigError::invalid(
                &key("source"),
                source,
                "is a rainforest source, whose events name their own webhook URL",
                "a route for another source",
            ));
        }
        if own.region.is_some() {
            return Err(ConfigError::invalid(
                &key("source"),
                source,
                "has its own region, which is tried first, so this route would never apply",
                "remove sources.NAME.region to route it",
            ));
        }
    }
    json_pointers(
        &key("match"),
        r.matches.keys().map(String::as_str),
        "{ \"/owner_email\" = \"andrew@tray.io\" }",
    )?;
    let target = match (&r.region, &r.webhook_url) {
        (Some(region), None) if regions.contains_key(region) => RouteTarget::Region(region.clone()),
        (Some(region), None) => {
            return Err(ConfigError::invalid(
                &key("region"),
                region,
                "names no [regions.…] table",
                &example_region(regions),
            ))
        }
        (None, Some(url)) => RouteTarget::Url(region::webhook_url(&key("webhook_url"), url)?),
        _ => {
            return Err(ConfigError::invalid(
                &key("region"),
                "(region and webhook_url)",
                "needs exactly one of region or webhook_url",
                "region = \"UK\"",
            ))
        }
    };
    Ok(Route {
        source: r.source.clone(),
        matches: r
            .matches
            .iter()
            .map(|(p, v)| (p.clone(), v.trim().to_lowercase()))
            .collect(),
        target,
    })
}
