//! Which target a notification goes to.
//!
//! Order, first answer wins:
//! 1. the source's own default: a tray-commerce `sellers` entry, then the source's `region`;
//! 2. `[[routes]]` in file order (a route with `source` applies to that source only; every
//!    `match` pointer must hold, compared as case-insensitive strings);
//! 3. the country table: the `routing.field` value looked up in the regions' `countries`, then
//!    `routing.default_region`.

use serde_json::Value;

use crate::config::WebhookUrl;
use crate::config::{RouteTarget, Settings, SourceSettings};
use crate::sources::generic::scalar_text;
use crate::sources::SourceKind;
use crate::store::journal::target_key;

/// A resolved target.
#[derive(Debug, Clone, PartialEq)]
pub struct Destination {
    /// The target key: a region name, or `url.…` for a one-off webhook.
    pub region: String,
    /// The one-off webhook, when it is not a region.
    pub url: Option<WebhookUrl>,
}

impl Destination {
    pub fn region(name: &str) -> Destination {
        Destination {
            region: name.to_string(),
            url: None,
        }
    }

    pub fn url(url: WebhookUrl) -> Destination {
        Destination {
            region: target_key(&url.original()),
            url: Some(url),
        }
    }
}

pub fn destination(
    settings: &Settings,
    source: &str,
    own: &SourceSettings,
    doc: &Value,
) -> Option<Destination> {
    if let Some(region) = scalar(doc, "/seller_id").and_then(|s| own.sellers.get(s.trim())) {
        return Some(Destination::region(region));
    }
    if let Some(region) = &own.region {
        return Some(Destination::region(region));
    }
    for route in &settings.routes {
        if route.source.as_deref().is_some_and(|s| s != source) {
            continue;
        }
        let all = route.matches.iter().all(|(pointer, expected)| {
            scalar(doc, pointer).is_some_and(|v| v.trim().to_lowercase() == *expected)
        });
        if all {
            return Some(match &route.target {
                RouteTarget::Region(r) => Destination::region(r),
                RouteTarget::Url(u) => Destination::url(u.clone()),
            });
        }
    }
    let key = doc
        .get(&settings.routing.field)
        .and_then(Value::as_str)
        .unwrap_or("");
    settings.routing.region_for(key).map(Destination::region)
}

/// A source's effective routing, in the order it is tried, for `check-config`.
pub fn describe(settings: &Settings, source: &str) -> Vec<String> {
    let Some(own) = settings.sources.get(source) else {
        return Vec::new();
    };
    if own.kind == SourceKind::Rainforest {
        return vec![
            "each event's own Slack URL (hosts allowed: ".to_string()
                + &own.allowed_webhook_hosts.join(", ")
                + ")",
        ];
    }
    let mut steps = Vec::new();
    let mut sellers: Vec<_> = own.sellers.iter().collect();
    sellers.sort();
    for (seller, region) in sellers {
        steps.push(format!("seller_id {seller} → region {region}"));
    }
    if let Some(region) = &own.region {
        steps.push(format!(
            "everything else → region {region} (routes and countries are not used)"
        ));
        return steps;
    }
    for route in settings
        .routes
        .iter()
        .filter(|r| r.source.as_deref().map_or(true, |s| s == source))
    {
        let conditions: Vec<String> = route
            .matches
            .iter()
            .map(|(p, v)| format!("{p} = {v:?}"))
            .collect();
        let target = match &route.target {
            RouteTarget::Region(r) => format!("region {r}"),
            RouteTarget::Url(u) => format!("webhook {u}"),
        };
        let when = if conditions.is_empty() {
            "always".to_string()
        } else {
            conditions.join(" and ")
        };
        steps.push(format!("route: {when} → {target}"));
    }
    steps.push(format!(
        "{} by the regions' countries",
        settings.routing.field
    ));
    steps.push(match &settings.routing.default_region {
        Some(d) => format!("otherwise → region {d}"),
        None => "otherwise refused with 422".to_string(),
    });
    steps
}

/// The value at a JSON pointer as text (strings as they are, numbers and booleans written out).
fn scalar(doc: &Value, pointer: &str) -> Option<String> {
    doc.pointer(pointer).and_then(scalar_text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const CONFIG: &str = r#"
        [sources.crm]
        kind = "opportunity"
        [sources.shop]
        kind = "tray-commerce"
        sellers = { "391250" = "UK" }
        region = "EU"
        [regions.UK]
        webhook_url = "file://uk.jsonl"
        countries = ["UK", "GB"]
        [regions.US]
        webhook_url = "file://us.jsonl"
        [regions.EU]
        webhook_url = "file://eu.jsonl"
        [[routes]]
        source = "crm"
        match = { "/owner_email" = "Andrew@Tray.io" }
        region = "US"
        [[routes]]
        match = { "/type" = "renewal", "/country" = "uk" }
        webhook_url = "https://hooks.slack.com/services/T/B/RENEWALS"
    "#;

    fn route(source: &str, doc: Value) -> Option<Destination> {
        let s = Settings::parse(CONFIG).unwrap();
        destination(&s, source, &s.sources[source], &doc)
    }

    #[test]
    fn the_country_table_is_the_fallback() {
        assert_eq!(
            route("crm", json!({"country": "gb"})),
            Some(Destination::region("UK"))
        );
        assert_eq!(route("crm", json!({"country": "JP"})), None);
    }

    #[test]
    fn the_first_matching_route_wins_case_insensitively() {
        let d = route(
            "crm",
            json!({"country": "UK", "owner_email": "andrew@tray.io", "type": "Renewal"}),
        );
        assert_eq!(d, Some(Destination::region("US")));
        let d = route("crm", json!({"country": "UK", "type": "RENEWAL"})).unwrap();
        assert!(d.region.starts_with("url.") && !d.region.contains("RENEWALS"));
        assert_eq!(
            d.url.unwrap().masked(),
            "https://hooks.slack.com/services/***"
        );
    }

    #[test]
    fn a_route_needs_every_match_to_hold() {
        assert_eq!(
            route("crm", json!({"country": "US", "type": "renewal"})),
            Some(Destination::region("US"))
        );
    }

    #[test]
    fn a_sources_own_default_comes_first() {
        assert_eq!(
            route("shop", json!({"seller_id": "391250", "country": "US"})),
            Some(Destination::region("UK"))
        );
        assert_eq!(
            route(
                "shop",
                json!({"seller_id": "1", "type": "renewal", "country": "UK"})
            ),
            Some(Destination::region("EU"))
        );
    }

    #[test]
    fn the_effective_routing_is_described_in_order_without_secrets() {
        let s = Settings::parse(CONFIG).unwrap();
        let crm = describe(&s, "crm");
        assert_eq!(
            crm[0],
            "route: /owner_email = \"andrew@tray.io\" → region US"
        );
        assert_eq!(crm[1], "route: /country = \"uk\" and /type = \"renewal\" → webhook https://hooks.slack.com/services/***");
        assert_eq!(crm[2], "country by the regions' countries");
        assert_eq!(crm[3], "otherwise refused with 422");
        let shop = describe(&s, "shop");
        assert_eq!(
            shop,
            [
                "seller_id 391250 → region UK",
                "everything else → region EU (routes and countries are not used)"
            ]
        );
    }
}
