//! Signing and verifying access tokens: the cost of one token at the token
//! endpoint (claims to JSON, sign) and at a protected endpoint (parse,
//! verify, claims from JSON), per algorithm.
//!
//! `cargo bench -p nephele-auth --bench jws`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use nephele_auth::jws::{parse, Algorithm, SigningKey};
use serde_json::{json, Value};

fn claims() -> Value {
    json!({
        "iss": "https://nephele.example.test",
        "sub": "01a204f6-cd05-738e-b096-693e2f9ddc49",
        "aud": "https://nephele.example.test",
        "exp": 1_795_383_213, "iat": 1_795_379_613, "nbf": 1_795_379_613,
        "jti": "15114ab3-eaed-4e43-9ce4-b2c71e06c9d0",
        "tenant_id": "01a204f6-ccdc-70d5-bdb7-db80c945a35e",
        "scope": "",
        "client_id": "01a204f6-cd05-738e-b096-693e2f9ddc49"
    })
}

fn bench(c: &mut Criterion) {
    let claims = claims();
    for alg in [Algorithm::ES256, Algorithm::EdDSA, Algorithm::RS256] {
        let (key, _) =
            SigningKey::generate(alg, "01a204f6-c139-77a8-acac-df63e925a66e".into()).expect("key");
        let header = key.header("at+jwt");
        let verifier = key.verifying_key().expect("verifier");
        c.bench_function(&format!("sign {alg}"), |b| {
            b.iter(|| {
                let payload = serde_json::to_vec(black_box(&claims)).unwrap();
                key.sign(&header, &payload).unwrap()
            })
        });
        let token = key
            .sign(&header, &serde_json::to_vec(&claims).unwrap())
            .unwrap();
        c.bench_function(&format!("verify {alg}"), |b| {
            b.iter(|| {
                let parsed = parse(black_box(&token)).unwrap();
                let payload = parsed.verify(&verifier).unwrap();
                serde_json::from_slice::<Value>(&payload).unwrap()
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
