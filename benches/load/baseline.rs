//! The no-storage baseline: an in-process actix-web server doing the real handler's work
//! (source, content type, body limit, JSON, validation, routing) minus the journal.

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::http::header;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use futures_util::StreamExt;
use hookrelay::config::Settings;
use hookrelay::sources::opportunity::Opportunity;
use hookrelay::sources::Record;
use serde_json::{json, Value};

use super::common::healthz;
use super::generator::{run_load, Report};
use super::{config_text, READY_TIMEOUT};

struct BaselineState {
    settings: Settings,
    next_id: AtomicU64,
}

async fn baseline_receive(
    req: HttpRequest,
    source: web::Path<String>,
    mut payload: web::Payload,
    state: web::Data<BaselineState>,
) -> HttpResponse {
    let settings = &state.settings;
    let source = source.into_inner();
    if !settings.sources.contains_key(&source) {
        return HttpResponse::NotFound().json(json!({"error": "unknown_source"}));
    }
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("application/json") {
        return HttpResponse::UnsupportedMediaType()
            .json(json!({"error": "unsupported_media_type"}));
    }
    let limit = settings.server.max_body_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut body =
        web::BytesMut::with_capacity(declared.unwrap_or(1024).min(limit as u64) as usize);
    while let Some(chunk) = payload.next().await {
        let Ok(chunk) = chunk else {
            return HttpResponse::BadRequest().json(json!({"error": "bad_request"}));
        };
        if body.len() + chunk.len() > limit {
            return HttpResponse::PayloadTooLarge().json(json!({"error": "payload_too_large"}));
        }
        body.extend_from_slice(&chunk);
    }
    let Ok(doc) = serde_json::from_slice::<Value>(&body) else {
        return HttpResponse::BadRequest().json(json!({"error": "malformed_json"}));
    };
    let Ok(opportunity) = Opportunity::parse(&doc) else {
        return HttpResponse::UnprocessableEntity().json(json!({"error": "invalid_record"}));
    };
    let country = doc
        .get(&settings.routing.field)
        .and_then(Value::as_str)
        .unwrap_or("");
    let Some(region) = settings.routing.region_for(country).map(str::to_string) else {
        return HttpResponse::UnprocessableEntity().json(json!({"error": "unroutable"}));
    };
    // What the real handler hands to the journal, built and then dropped.
    let raw = String::from_utf8_lossy(&body).into_owned();
    let external_id = opportunity.id.clone();
    std::hint::black_box((
        source,
        external_id,
        raw,
        Record::Opportunity(opportunity),
        region,
    ));
    let id = state.next_id.fetch_add(1, Ordering::Relaxed);
    HttpResponse::Accepted().json(json!({"status": "accepted", "id": id.to_string()}))
}

/// The baseline server on its own thread with its own actix `System`.
struct Baseline {
    handle: ServerHandle,
    thread: std::thread::JoinHandle<()>,
    addr: SocketAddr,
}

impl Baseline {
    fn start(settings: Settings) -> Baseline {
        let listener = TcpListener::bind("127.0.0.1:0").expect("cannot bind the baseline server");
        let addr = listener
            .local_addr()
            .expect("the baseline listener has no address");
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("baseline-server".into())
            .spawn(move || {
                let state = web::Data::new(BaselineState {
                    settings,
                    next_id: AtomicU64::new(1),
                });
                let result = actix_web::rt::System::new().block_on(async move {
                    let server = HttpServer::new(move || {
                        App::new()
                            .app_data(state.clone())
                            .route("/hooks/{source}", web::post().to(baseline_receive))
                            .route(
                                "/healthz",
                                web::get().to(|| async {
                                    HttpResponse::Ok().json(json!({"status": "ok"}))
                                }),
                            )
                    })
                    .listen(listener)?
                    .shutdown_timeout(2)
                    .run();
                    let _ = tx.send(server.handle());
                    server.await
                });
                if let Err(e) = result {
                    eprintln!("the baseline server failed: {e}");
                }
            })
            .expect("cannot start the baseline server thread");
        let handle = rx
            .recv()
            .expect("the baseline server did not start (see the error above)");
        Baseline {
            handle,
            thread,
            addr,
        }
    }

    fn stop(self) {
        actix_web::rt::System::new().block_on(self.handle.stop(true));
        self.thread
            .join()
            .expect("the baseline server thread panicked");
    }
}

pub(super) fn run_baseline(conns: u64, warmup: Duration, measure: Duration) -> Report {
    let dir = tempfile::tempdir().expect("cannot create a temporary directory");
    let settings =
        Settings::parse(&config_text(dir.path(), 0)).expect("the generated config is valid");
    let baseline = Baseline::start(settings);
    let deadline = Instant::now() + READY_TIMEOUT;
    while !healthz(baseline.addr) {
        assert!(
            Instant::now() < deadline,
            "the baseline server never became ready"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let report = run_load(
        "no-storage (in-proc)",
        baseline.addr,
        conns,
        warmup,
        measure,
    );
    baseline.stop();
    report
}
