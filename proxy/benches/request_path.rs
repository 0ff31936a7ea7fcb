//! What cadgate adds to every request before git runs: routing the URL,
//! checking the token, and checking the framing of a fetch negotiation.
//! Compare with the ~1 ms it takes to spawn git itself.

use std::hint::black_box;
use std::path::Path;

use base64::Engine as _;
use cadgate::smart_http::pktline;
use cadgate::{auth, routes};
use cadgate_config::{token_sha256_hex, Config};
use criterion::{criterion_group, criterion_main, Criterion};
use http::{HeaderMap, HeaderValue};

fn config() -> Config {
    let mut text = String::from("[[repository]]\nname = \"org/blueprints\"\n");
    for i in 0..100 {
        text.push_str(&format!(
            "[[user]]\nname = \"user{i}\"\ntoken_sha256 = \"{}\"\nroles = [\"author\"]\nrepositories = [\"org/*\"]\n",
            token_sha256_hex(&format!("token-{i}"))
        ));
    }
    Config::parse(&text, "bench", Path::new(".")).expect("valid bench config")
}

/// A v2 fetch request with `haves` have lines, as git sends when negotiating.
fn negotiation(haves: usize) -> Vec<u8> {
    let line = |s: String| format!("{:04x}{s}", s.len() + 4);
    let mut body = line("command=fetch\n".into()).into_bytes();
    body.extend(b"0001");
    body.extend(line(format!("want {:040x}\n", 1)).as_bytes());
    for i in 0..haves {
        body.extend(line(format!("have {:040x}\n", i + 2)).as_bytes());
    }
    body.extend(b"0009done\n0000");
    body
}

fn request_path(c: &mut Criterion) {
    c.bench_function("route /org/blueprints.git/git-upload-pack", |b| {
        b.iter(|| routes::route(black_box("/org/blueprints.git/git-upload-pack")))
    });

    let config = config();
    let mut headers = HeaderMap::new();
    let credentials = base64::engine::general_purpose::STANDARD.encode("user99:token-99");
    headers.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Basic {credentials}")).expect("header"),
    );
    c.bench_function("authenticate + authorize (100 users)", |b| {
        b.iter(|| {
            let principal = auth::authenticate(&config, black_box(&headers))
                .expect("valid")
                .expect("present");
            auth::authorize(
                &config,
                &principal,
                "org/blueprints",
                cadgate_config::Role::Reader,
                "fetching",
            )
            .expect("allowed")
        })
    });

    let body = negotiation(3000);
    c.bench_function("pkt-line check of a 3000-have negotiation", |b| {
        b.iter(|| pktline::check_complete(black_box(&body)).expect("well framed"))
    });
}

criterion_group!(benches, request_path);
criterion_main!(benches);
