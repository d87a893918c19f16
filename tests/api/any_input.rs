//! Whatever a sender posts, the answer is a 2xx or a 4xx JSON error: never a 500, a panic or a
//! half-stored record.

use proptest::prelude::*;
use serde_json::{json, Value};

use crate::helpers::{opportunity, spawn_app, TestApp};

/// JSON values of any shape, small enough to keep the run quick.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,40}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map(".{0,10}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// The brief's opportunity with one field replaced or removed.
fn mutated_opportunity() -> impl Strategy<Value = Value> {
    let fields = [
        "id",
        "name",
        "status",
        "account",
        "close_date",
        "type",
        "country",
        "owner_name",
        "owner_email",
        "amount",
    ];
    (
        0..fields.len(),
        prop::option::of(any_json()),
        "[a-zA-Z0-9<>&!@ ]{1,30}",
    )
        .prop_map(move |(i, value, id)| {
            // Unique per case, so an id accepted in one case is never expected absent in another.
            static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut doc = opportunity(&format!("{id}-{n}"), "UK");
            match value {
                Some(v) => doc[fields[i]] = v,
                None => {
                    doc.as_object_mut().map(|o| o.remove(fields[i]));
                }
            }
            doc
        })
}

/// `check_any` for the opportunity source, plus what its CRM id allows checking: a refused body
/// left nothing under its id, and an accepted one has exactly one delivery.
fn check(app: &TestApp, body: &[u8], content_type: &str) -> Result<(), TestCaseError> {
    let answer = check_any(app, "/hooks/salesforce", content_type, body)?;
    if answer.status >= 400 {
        if let Some(id) = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| v["id"].as_str().map(str::to_string))
        {
            prop_assert_eq!(app.store.find_external("salesforce", &id).unwrap(), None);
        }
    } else {
        let id: u64 = answer.json["id"]
            .as_str()
            .unwrap_or("x")
            .parse()
            .map_err(|_| TestCaseError::fail("id"))?;
        prop_assert_eq!(crate::helpers::deliveries_of(&app.store, id).len(), 1);
    }
    Ok(())
}

/// Any source, any path: 2xx, or a 4xx with a JSON error; an answer with an id names a stored
/// notification with its delivery.
fn check_any(
    app: &TestApp,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> Result<crate::helpers::Answer, TestCaseError> {
    let answer = app.post_path(path, content_type, body);
    prop_assert!(
        (200..300).contains(&answer.status) || (400..500).contains(&answer.status),
        "{path}: status {} for {:?}: {}",
        answer.status,
        String::from_utf8_lossy(body),
        answer.text
    );
    if answer.status >= 400 {
        prop_assert!(
            answer.json["type"].is_string() && answer.json["error"].is_string(),
            "{}",
            answer.text
        );
    } else if let Some(id) = answer.json["id"].as_str() {
        let id: u64 = id.parse().map_err(|_| TestCaseError::fail("id"))?;
        prop_assert!(
            app.store.notification(id).unwrap().is_some(),
            "stored whole"
        );
        prop_assert!(
            !crate::helpers::deliveries_of(&app.store, id).is_empty(),
            "with its delivery"
        );
    }
    Ok(answer)
}

/// Form bodies made of Tray's field names and random values.
fn tray_form() -> impl Strategy<Value = String> {
    let field = prop_oneof![
        Just("seller_id"),
        Just("scope_id"),
        Just("scope_name"),
        Just("act"),
        Just("app_code"),
        Just("x")
    ];
    let value = prop_oneof![
        Just("order".to_string()),
        Just("update".to_string()),
        Just("391250".to_string()),
        ".{0,12}".prop_map(|s| s)
    ];
    prop::collection::vec((field, value), 0..7).prop_map(|pairs| {
        let mut out = form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs {
            out.append_pair(k, &v);
        }
        out.finish()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_bytes_get_a_2xx_or_a_4xx_json_error(body in prop::collection::vec(any::<u8>(), 0..300)) {
        let app = shared_app();
        check(app, &body, "application/json")?;
    }

    #[test]
    fn any_json_gets_a_2xx_or_a_4xx_json_error(doc in any_json()) {
        let app = shared_app();
        check(app, doc.to_string().as_bytes(), "application/json; charset=utf-8")?;
    }

    #[test]
    fn any_bytes_to_any_source_get_a_2xx_or_a_4xx_json_error(
        body in prop::collection::vec(any::<u8>(), 0..300),
        path in prop_oneof![Just("/hooks/shop"), Just("/hooks/orders"), Just("/events"), Just("/hooks/secured")],
        content_type in prop_oneof![Just("application/json"), Just("application/x-www-form-urlencoded"), Just(""), Just("text/plain")],
    ) {
        check_any(shared_app(), path, content_type, &body)?;
    }

    #[test]
    fn any_tray_form_gets_a_2xx_or_a_4xx_json_error(form in tray_form()) {
        check_any(shared_app(), "/hooks/shop", "application/x-www-form-urlencoded", form.as_bytes())?;
    }

    #[test]
    fn any_json_to_any_source_gets_a_2xx_or_a_4xx_json_error(
        doc in any_json(),
        path in prop_oneof![Just("/hooks/shop"), Just("/hooks/orders"), Just("/events")],
    ) {
        check_any(shared_app(), path, "application/json", doc.to_string().as_bytes())?;
    }

    #[test]
    fn any_json_to_an_approval_source_gets_a_2xx_or_a_4xx_json_error(
        doc in any_json(),
        request in prop::option::of((".{0,20}", ".{0,20}")),
    ) {
        // Either any JSON, or a nearly valid request with odd id and requester.
        let body = match request {
            Some((id, who)) => json!({"request": {"id": id, "email": who}, "groups": doc}),
            None => doc,
        };
        check_any(approval_app(), "/hooks/dataroom", "application/json", body.to_string().as_bytes())?;
    }

    #[test]
    fn any_signed_interaction_gets_a_2xx_or_a_4xx_json_error(
        payload in any_json(),
        click in prop::option::of((".{0,12}", ".{0,30}", ".{0,12}")),
    ) {
        // Either any JSON as the payload, or a block_actions payload with odd ids.
        let payload = match click {
            Some((action, block, user)) => json!({"type": "block_actions", "user": {"id": user},
                "actions": [{"action_id": action, "block_id": block, "value": payload}],
                "response_url": "http://127.0.0.1:9/x"}),
            None => payload,
        };
        let body: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", &payload.to_string())
            .finish();
        let app = approval_app();
        let ts = (hookrelay::store::now_ms() / 1000).to_string();
        let sig = hookrelay::slack::signature::SigningSecret::parse(SIGNING_SECRET)
            .unwrap()
            .sign(&ts, body.as_bytes());
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        let answer = crate::helpers::Answer::read(
            agent
                .post(format!("{}/slack/interactions", app.address))
                .header("Content-Type", "application/x-www-form-urlencoded")
                .header("X-Slack-Request-Timestamp", &ts)
                .header("X-Slack-Signature", &sig)
                .send(body.as_bytes())
                .expect("relay answers"),
        );
        prop_assert!(
            answer.status == 200 || ((400..500).contains(&answer.status) && answer.json["type"].is_string()),
            "status {} for {}: {}", answer.status, payload, answer.text
        );
    }

    #[test]
    fn any_damaged_opportunity_gets_a_2xx_or_a_4xx_json_error(doc in mutated_opportunity()) {
        let app = shared_app();
        check(app, doc.to_string().as_bytes(), "application/json")?;
    }
}

const SIGNING_SECRET: &str = "any-input-signing-secret-0123";

/// A relay with an approval source and the Request URL on, shared like [`shared_app`].
fn approval_app() -> &'static TestApp {
    static APP: std::sync::OnceLock<TestApp> = std::sync::OnceLock::new();
    APP.get_or_init(|| {
        let slack = std::sync::Arc::new(crate::fake_slack::FakeSlack::start());
        let dir = std::sync::Arc::new(tempfile::tempdir().expect("temp dir"));
        let text = format!(
            "{}\n[sources.dataroom]\nkind = \"approval\"\nid = \"/request/id\"\nrequester = \"/request/email\"\nchoices = \"/groups\"\ndecision_url = \"{}\"\napprovers = [\"U1\"]\nregion = \"UK\"\n[slack]\nsigning_secret = \"{SIGNING_SECRET}\"\nresponse_url_hosts = [\"127.0.0.1\"]\n",
            crate::helpers::config(&slack, dir.path()),
            slack.url("decisions")
        );
        crate::helpers::spawn_with(&text, slack, dir)
    })
}

/// One relay for all cases: starting one per case would make the run slow, and sharing it also
/// shows that earlier bad input did not break later requests.
fn shared_app() -> &'static TestApp {
    static APP: std::sync::OnceLock<TestApp> = std::sync::OnceLock::new();
    APP.get_or_init(|| {
        let app = spawn_app();
        assert_eq!(
            app.post(&json!({"id": "warm-up", "name": "n", "country": "US"}))
                .status,
            202
        );
        app
    })
}
