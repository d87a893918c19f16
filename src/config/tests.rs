//! The whole configuration, read from TOML text: what is accepted, what is refused and how the
//! error reads.

use std::time::Duration;

use super::*;

const GOOD: &str = r#"
    [sources.salesforce]
    kind = "opportunity"
    [regions.UK]
    webhook_url = "https://hooks.slack.com/services/T/B/SECRET"
    countries = ["UK", "gb"]
    rate = "50/h"
    [regions.US]
    webhook_url = "file://outbox/us.jsonl"
    [routing]
    default_region = "US"
"#;

#[test]
fn defaults_fill_what_the_file_leaves_out() {
    let s = Settings::parse(GOOD).unwrap();
    assert_eq!(s.server.listen, "127.0.0.1:8080");
    assert_eq!(s.server.max_body_bytes, 1_048_576);
    assert_eq!(s.server.client_request_timeout, Duration::from_secs(5));
    assert_eq!(s.server.client_body_timeout, Duration::from_secs(10));
    assert_eq!(s.server.max_connections, 4096);
    assert_eq!(s.delivery.workers, 4);
    assert_eq!(s.delivery.max_attempts, 10);
    assert_eq!(s.delivery.timeout, Duration::from_secs(10));
    assert_eq!(s.regions["US"].rate, Rate::SLACK_DEFAULT);
    assert_eq!(s.regions["US"].burst, 3);
    assert_eq!(s.routing.field, "country");
}

#[test]
fn bad_front_door_limits_name_the_key_the_value_and_an_example() {
    for (line, key, value, example) in [
        (
            "client_body_timeout = \"soon\"",
            "server.client_body_timeout",
            "soon",
            "\"30s\"",
        ),
        (
            "client_request_timeout = \"0s\"",
            "server.client_request_timeout",
            "0s",
            "\"5s\"",
        ),
        ("max_connections = 0", "server.max_connections", "0", "4096"),
    ] {
        let text = format!("[server]\n{line}\n{GOOD}");
        let err = Settings::parse(&text).unwrap_err().to_string();
        assert!(
            err.contains(key) && err.contains(value) && err.contains(example),
            "{line}: {err}"
        );
    }
}

#[test]
fn countries_match_case_insensitively_and_region_names_are_their_own_country() {
    let s = Settings::parse(GOOD).unwrap();
    assert_eq!(s.routing.region_for("GB"), Some("UK"));
    assert_eq!(s.routing.region_for("uk"), Some("UK"));
    assert_eq!(s.routing.region_for("us"), Some("US"));
    assert_eq!(s.routing.region_for("DE"), Some("US"), "default region");
}

#[test]
fn store_sizes_parse_with_units_and_bad_ones_name_key_value_and_example() {
    let s = Settings::parse(GOOD).unwrap();
    assert_eq!(s.store.options, store::StoreOptions::default());
    let text = format!("{GOOD}\n[store]\ncache_size = \"128 MiB\"\ncheckpoint_size = \"8MiB\"\n");
    let s = Settings::parse(&text).unwrap();
    assert_eq!(s.store.options.cache_bytes, 128 << 20);
    assert_eq!(s.store.options.segment_bytes, 2 << 20);
    let text = format!("{GOOD}\n[store]\ncache_size = \"lots\"\n");
    let err = Settings::parse(&text).unwrap_err().to_string();
    assert!(
        err.contains("store.cache_size") && err.contains("lots") && err.contains("64MiB"),
        "{err}"
    );
    let text = format!("{GOOD}\n[store]\ncache_size = \"100KiB\"\n");
    let err = Settings::parse(&text).unwrap_err().to_string();
    assert!(err.contains("below 1MiB"), "{err}");
}

#[test]
fn unknown_keys_are_errors() {
    let err = Settings::parse("[delivery]\nmax_attemps = 3\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("max_attemps"), "{err}");
}

#[test]
fn a_default_region_must_exist() {
    let text = GOOD.replace("default_region = \"US\"", "default_region = \"APAC\"");
    let err = Settings::parse(&text).unwrap_err().to_string();
    assert!(
        err.contains("routing.default_region") && err.contains("APAC"),
        "{err}"
    );
}

#[test]
fn a_country_in_two_regions_is_an_error() {
    let text = GOOD.replace("[\"UK\", \"gb\"]", "[\"UK\", \"us\"]");
    let err = Settings::parse(&text).unwrap_err().to_string();
    assert!(err.contains("already claimed"), "{err}");
}

#[test]
fn a_bad_webhook_url_is_reported_without_the_secret() {
    let text = GOOD.replace(
        "https://hooks.slack.com/services/T/B/SECRET",
        "ftp://x/T/B/SECRET",
    );
    let err = Settings::parse(&text).unwrap_err().to_string();
    assert!(err.contains("regions.UK.webhook_url"), "{err}");
    assert!(!err.contains("SECRET"), "{err}");
}

#[test]
fn an_unknown_source_kind_is_an_error() {
    let text = GOOD.replace("kind = \"opportunity\"", "kind = \"fax\"");
    let err = Settings::parse(&text).unwrap_err().to_string();
    assert!(
        err.contains("sources.salesforce.kind") && err.contains("fax"),
        "{err}"
    );
}

#[test]
fn the_shipped_config_is_valid() {
    let text = include_str!("../../config.toml");
    let s = Settings::parse(text).unwrap();
    assert!(s.sources.contains_key("salesforce"));
    for region in ["UK", "US", "EU"] {
        assert!(s.regions.contains_key(region), "{region}");
    }
}

#[test]
fn the_shipped_configs_commented_slack_app_examples_work_when_uncommented() {
    for text in [
        include_str!("../../config.toml"),
        include_str!("../../packaging/config.toml"),
    ] {
        // The on_status table as shipped, uncommented.
        let text = text
            .lines()
            .map(|l| match l.strip_prefix("# ") {
                Some(rest) if rest.starts_with("[sources.salesforce.on_status]") => rest,
                Some(rest) if rest.starts_with("\"Closed") || rest.starts_with("\"Withdrawn") => {
                    rest
                }
                _ => l,
            })
            .collect::<Vec<_>>()
            .join("\n");
        let s = Settings::parse(&text).unwrap();
        let rules = s.sources["salesforce"]
            .on_status
            .as_ref()
            .expect("on_status");
        assert_eq!(
            rules.for_value("closed won").unwrap().react.as_deref(),
            Some("tada")
        );
        assert!(rules.for_value("Withdrawn").unwrap().delete);
    }
}

#[test]
fn a_syntax_error_on_a_secrets_line_does_not_show_the_secret() {
    for line in [
        "bot_tokn = \"xoxb-111-222-TOPSECRET\"",
        "bot_token = \"xoxb-111-222-TOPSECRET",
        "webhook_url = \"https://hooks.slack.com/services/T/B/TOPSECRET\"\nwebhook_url = \"x\"",
        "signing_secret = 'TOPSECRET' x",
    ] {
        let err = Settings::parse(&format!("[regions.UK]\n{line}\n"))
            .unwrap_err()
            .to_string();
        assert!(!err.contains("TOPSECRET"), "{err}");
        assert!(err.contains("***"), "{err}");
    }
}

#[test]
fn the_shipped_configs_commented_approval_source_works_when_uncommented() {
    for text in [
        include_str!("../../config.toml"),
        include_str!("../../packaging/config.toml"),
    ] {
        let start = text.find("# [sources.dataroom]").expect("the example");
        let block: String = text[start..]
            .lines()
            .take_while(|l| l.starts_with('#'))
            .filter_map(|l| l.strip_prefix("# ").or(l.strip_prefix('#')))
            // Files the test machine lacks: the same secrets inline.
            .map(|l| {
                if l.starts_with("decision_token_file") {
                    "decision_token = \"0123456789abcdef\"".to_string()
                } else if l.starts_with("signing_secret_file") {
                    "signing_secret = \"0123456789abcdef0123\"".to_string()
                } else if l.starts_with("app_token_file") {
                    String::new()
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        let s = Settings::parse(&format!("{text}\n{block}\n")).unwrap();
        let approval = s.sources["dataroom"].approval.as_ref().expect("approval");
        assert_eq!(approval.fields.requester, "/request/email");
        assert!(approval.approvers.has_id("U0456EFGH"));
        assert!(s.slack.signing_secret.is_some());
    }
}

#[test]
fn an_approval_source_needs_interactivity_and_approvers() {
    let base = format!(
        "{GOOD}\n[sources.dataroom]\nkind = \"approval\"\ndecision_url = \"https://c.example/d\"\nregion = \"UK\"\n"
    );
    let err = Settings::parse(&format!("{base}approvers = [\"U1\"]\n"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("signing_secret") && err.contains("app_token"),
        "{err}"
    );
    let slack = "[slack]\nsigning_secret = \"0123456789abcdef0123\"\n";
    let err = Settings::parse(&format!("{base}{slack}"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("approvers"), "{err}");
    let err = Settings::parse(&format!("{base}approvers = [\"bob\"]\n{slack}"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("bob") && err.contains("user id"), "{err}");
    let err = Settings::parse(&format!(
        "{base}approvers = [\"U1\"]\nrequester = \"email\"\n{slack}"
    ))
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("sources.dataroom.requester") && err.contains("JSON pointer"),
        "{err}"
    );
    assert!(Settings::parse(&format!("{base}approvers = [\"U1\"]\n{slack}")).is_ok());
}

#[test]
fn signed_sources_are_checked() {
    let with = |source: &str| {
        Settings::parse(&format!("{GOOD}\n[sources.signed]\n{source}\n")).map_err(|e| e.to_string())
    };
    assert!(with("kind = \"opportunity\"\nverify = \"standard-webhooks\"\nsigning_secrets = [\"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"]").is_ok());
    let err = with("kind = \"opportunity\"\nverify = \"standard-webhooks\"\nsigning_secrets = [\"not base64 !\"]").unwrap_err();
    assert!(
        err.contains("signing_secrets[0]") && !err.contains("not base64"),
        "{err}"
    );
    let err = with("kind = \"opportunity\"\nverify = \"standard-webhooks\"").unwrap_err();
    assert!(err.contains("at least one secret"), "{err}");
    let err =
        with("kind = \"opportunity\"\nverify = \"pgp\"\nsigning_secrets = [\"x\"]").unwrap_err();
    assert!(err.contains("pgp"), "{err}");
    let err =
        with("kind = \"rainforest\"\nverify = \"hub-signature-256\"\nsigning_secrets = [\"x\"]")
            .unwrap_err();
    assert!(err.contains("rainforest"), "{err}");
}

#[test]
fn on_status_rules_are_checked() {
    let with = |table: &str| {
        Settings::parse(&format!(
            "{GOOD}\n[sources.salesforce.on_status]\n{table}\n"
        ))
        .map_err(|e| e.to_string())
    };
    let err = with("\"Won\" = { react = \"Party Popper\" }").unwrap_err();
    assert!(
        err.contains("react") && err.contains("Party Popper"),
        "{err}"
    );
    let err = with("\"Won\" = {}").unwrap_err();
    assert!(err.contains("asks for nothing"), "{err}");
    let err = with("\"Won\" = { delete = true, pin = true }").unwrap_err();
    assert!(err.contains("deletes"), "{err}");
    let err = with("\"Won\" = { pinn = true }").unwrap_err();
    assert!(err.contains("pinn"), "{err}");
}

#[test]
fn routes_naming_unknown_regions_or_sources_are_rejected() {
    let bad_region =
        format!("{GOOD}\n[[routes]]\nmatch = {{ \"/type\" = \"x\" }}\nregion = \"APAC\"\n");
    let err = Settings::parse(&bad_region).unwrap_err().to_string();
    assert!(
        err.contains("routes[0].region") && err.contains("APAC"),
        "{err}"
    );
    let bad_source = format!("{GOOD}\n[[routes]]\nsource = \"erp\"\nregion = \"UK\"\n");
    let err = Settings::parse(&bad_source).unwrap_err().to_string();
    assert!(
        err.contains("routes[0].source") && err.contains("erp"),
        "{err}"
    );
    let both = format!("{GOOD}\n[[routes]]\nregion = \"UK\"\nwebhook_url = \"file://x\"\n");
    assert!(Settings::parse(&both)
        .unwrap_err()
        .to_string()
        .contains("exactly one"));
}

#[test]
fn kind_specific_keys_are_refused_on_other_kinds() {
    let text = GOOD.replace(
        "kind = \"opportunity\"",
        "kind = \"opportunity\"\nsellers = { \"1\" = \"UK\" }",
    );
    let err = Settings::parse(&text).unwrap_err().to_string();
    assert!(
        err.contains("sources.salesforce.sellers") && err.contains("tray-commerce"),
        "{err}"
    );
}

#[test]
fn a_route_that_could_never_apply_is_refused() {
    let text = format!("{GOOD}\n[sources.rf]\nkind = \"rainforest\"\n[[routes]]\nsource = \"rf\"\nregion = \"UK\"\n");
    assert!(Settings::parse(&text)
        .unwrap_err()
        .to_string()
        .contains("rainforest"));
    let text = format!("{GOOD}\n[sources.shop]\nkind = \"tray-commerce\"\nregion = \"US\"\n[[routes]]\nsource = \"shop\"\nregion = \"UK\"\n");
    assert!(Settings::parse(&text)
        .unwrap_err()
        .to_string()
        .contains("never apply"));
}

#[test]
fn a_client_certificate_subject_needs_the_relay_to_ask_for_client_certificates() {
    let text = format!(
        "{GOOD}\n[sources.crm]\nkind = \"opportunity\"\nclient_cert_subject = \"CN=crm.example.com\"\n"
    );
    let e = Settings::parse(&text).unwrap_err().to_string();
    assert!(e.contains("sources.crm.client_cert_subject"), "{e}");
    assert!(e.contains("server.tls_client_ca"), "{e}");
    let text = text.replacen(
        "[sources.salesforce]",
        "[server]\ntls_cert = \"/c.pem\"\ntls_key = \"/k.pem\"\ntls_client_ca = \"/ca.pem\"\n[sources.salesforce]",
        1,
    );
    let s = Settings::parse(&text).unwrap();
    let want = s.sources["crm"].client_cert_subject.as_ref().unwrap();
    assert_eq!(want.to_string(), "CN=crm.example.com");
}

#[test]
fn generic_keys_versions_ignore_and_marks_are_checked() {
    use crate::config::generic::OnRepeat;
    let with = |lines: &str| {
        format!("{GOOD}\n[sources.am]\nkind = \"generic\"\nregion = \"UK\"\n{lines}\n")
    };
    let s = Settings::parse(&with("id = \"/groupKey\"")).unwrap();
    let g = s.sources["am"].generic.clone().unwrap();
    assert_eq!(
        g.id.as_deref(),
        Some("{/groupKey}"),
        "a bare pointer is a one-field template"
    );
    assert_eq!(g.on_repeat, OnRepeat::Duplicate);
    let s = Settings::parse(&with(
        "id = \"{/groupKey}|{/status}\"\non_repeat = \"update\"\nignore = [\"/alerts/*/startsAt\"]\nmarks = { \"/status\" = { resolved = \"✅\" } }",
    ))
    .unwrap();
    let g = s.sources["am"].generic.clone().unwrap();
    assert_eq!(g.id.as_deref(), Some("{/groupKey}|{/status}"));
    assert_eq!(g.on_repeat, OnRepeat::Update);
    assert_eq!(g.ignore, ["/alerts/*/startsAt"]);
    assert_eq!(g.marks[0].0, "/status");
    for (lines, says) in [
        ("id = \"groupKey\"", "sources.am.id"),
        (
            "id = \"/k\"\non_repeat = \"replace\"",
            "is neither \"duplicate\" nor \"update\"",
        ),
        ("on_repeat = \"update\"", "needs sources.NAME.id"),
        (
            "id = \"/k\"\nignore = [\"/t\"]",
            "only matters with on_repeat",
        ),
        (
            "id = \"/k\"\non_repeat = \"update\"\nignore = [\"t\"]",
            "is not a JSON pointer",
        ),
        ("marks = { status = { ok = \"✅\" } }", "sources.am.marks"),
    ] {
        let err = Settings::parse(&with(lines)).unwrap_err().to_string();
        assert!(err.contains(says), "{lines}: {err}");
    }
    let err = Settings::parse(&format!(
        "{GOOD}\n[sources.crm]\nkind = \"opportunity\"\non_repeat = \"update\"\n"
    ))
    .unwrap_err()
    .to_string();
    assert!(err.contains("on_repeat"), "{err}");
}
