//! `GET /v1/export?since=MS`: every notification received since then, as JSON lines, for audits.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::{admin, AdminError};
use crate::http::hooks::IntakeState;
use crate::store::records::Notification;
use crate::store::{decode, keys, StoreError};

#[derive(Deserialize)]
pub struct Since {
    /// Milliseconds since the Unix epoch.
    since: Option<u64>,
}

pub async fn export(
    req: HttpRequest,
    q: web::Query<Since>,
    state: web::Data<IntakeState>,
) -> Result<HttpResponse, AdminError> {
    admin(&req, &state)?;
    let since = q.since.unwrap_or(0);
    let mut out = String::new();
    state.store.sync_reads()?;
    for entry in state.store.db().scan_prefix([keys::NOTIFICATION]) {
        let (_, value) = entry.map_err(StoreError::from)?;
        let n: Notification = decode(&value)?;
        if n.received_at_ms < since {
            continue;
        }
        let line = serde_json::json!({
            "id": n.id.to_string(),
            "source": n.source,
            "kind": n.kind.as_str(),
            "external_id": n.external_id,
            "received_at_ms": n.received_at_ms,
            "versions": n.latest_version() + 1,
            "raw": n.raw,
        });
        out.push_str(&line.to_string());
        out.push('\n');
    }
    Ok(HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .body(out))
}
