//! Rendering one Slack message: `render_opportunity` plus serialising the payload to bytes, which
//! is what a delivery worker does before each attempt.
//!
//! Two cases: the brief's example opportunity, and a hostile one (1,000-character name, a
//! `<!channel>` mention in the account, markup in other fields) that exercises escaping and cutting.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hookrelay::sources::opportunity::message::render_opportunity;
use hookrelay::sources::opportunity::Opportunity;
use serde_json::json;

fn example() -> Opportunity {
    Opportunity::parse(&json!({
        "id": "0065800000BwzJt",
        "name": "Sample02",
        "status": "Qualification",
        "account": "Andrew Test",
        "close_date": "2017-03-16",
        "type": "New Business",
        "country": "UK",
        "owner_name": "Andrew",
        "owner_email": "andrew@tray.io",
        "amount": 4500
    }))
    .expect("the brief's example is a valid opportunity")
}

fn hostile() -> Opportunity {
    let mut o = example();
    o.name = "N".repeat(1000);
    o.account = Some("<!channel> *wins* & <https://evil.example|click>".into());
    o.status = Some("<@U12345> `stage` ~x~ _y_".repeat(20));
    o.owner_name = Some("Ä".repeat(400));
    o.amount = Some(
        serde_json::Number::from_f64(1_234_567_890.125).expect("a finite number is a JSON number"),
    );
    o
}

fn render_to_bytes(o: &Opportunity) -> Vec<u8> {
    let payload = render_opportunity(o);
    serde_json::to_vec(&payload).expect("a Slack payload serialises")
}

fn bench_render(c: &mut Criterion) {
    let cases = [("example", example()), ("hostile", hostile())];
    for (name, o) in &cases {
        let bytes = render_to_bytes(o);
        println!("render/{name}: payload is {} bytes", bytes.len());
        if *name == "hostile" {
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                !text.contains("<!channel>"),
                "the hostile mention must be escaped"
            );
        }
    }

    let mut group = c.benchmark_group("render");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(3));
    group.warm_up_time(Duration::from_secs(1));
    for (name, o) in &cases {
        group.bench_function(format!("{name}/render+to_vec"), |b| {
            b.iter(|| render_to_bytes(black_box(o)))
        });
        group.bench_function(format!("{name}/render_only"), |b| {
            b.iter(|| render_opportunity(black_box(o)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_render);
criterion_main!(benches);
