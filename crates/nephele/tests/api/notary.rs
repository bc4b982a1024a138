//! The notary: stored files, batches into the Merkle log, certificates
//! checked offline, and what bad input gets.

use crate::binary::set_up_with;
use crate::durability::{serve, TOKEN};
use crate::support::*;
use nephele_api_types as api;
use nephele_notary::certificate::{verify, Certificate, NotaryKey, VerifyError};
use nephele_notary::merkle;
use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};

const BASE: &str = "/api/notary/v2/stored-files";

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn digest(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// A hex hash of the log.
fn hash32(hex_hash: &str) -> [u8; 32] {
    hex::decode(hex_hash).unwrap().try_into().unwrap()
}

async fn upload(s: &TestServer, name: &str, data: &'static [u8]) -> Value {
    let r = s
        .admin(Method::POST, &format!("{BASE}?name={name}"))
        .header("content-type", "application/octet-stream")
        .body(data)
        .send()
        .await
        .unwrap();
    json_of(r, 201).await["data"].clone()
}

async fn get(s: &TestServer, path: &str) -> Value {
    let r = s.admin(Method::GET, path).send().await.unwrap();
    json_of(r, 200).await
}

async fn keys(s: &TestServer) -> Vec<NotaryKey> {
    serde_json::from_value(get(s, "/api/notary/v2/keys").await["data"].clone()).unwrap()
}

/// A page: 200, as HTML.
async fn html_of(r: reqwest::Response) -> String {
    assert_eq!(r.status(), 200);
    let media = r.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(media.starts_with("text/html"), "{media}");
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.starts_with("default-src 'none'; style-src 'sha256-"),
        "{csp}"
    );
    r.text().await.unwrap()
}

async fn certificate(s: &TestServer, id: &str) -> Certificate {
    serde_json::from_value(get(s, &format!("{BASE}/{id}/certificate")).await["data"].clone())
        .unwrap()
}

#[tokio::test]
async fn files_are_stored_notarized_and_proven_offline() {
    let s = TestServer::set_up().await;
    let report = upload(&s, "report.txt", b"quarterly report").await;
    assert_eq!(report["status"], "PENDING");
    assert_eq!(report["sizeBytes"], 16);
    assert_eq!(report["content"], "stored");
    assert_eq!(report["sha256"], sha256_hex(b"quarterly report"));
    let id = report["id"].as_str().unwrap();

    // Not notarized yet: no certificate.
    let pending = s.admin_client().certificate(id).await;
    let errors = assert_refused(pending, 409, 2012);
    assert_eq!(errors[0].context["currentState"], "Pending");

    // A multipart upload, and a hash registered without content.
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(b"minutes of the meeting".to_vec())
            .file_name("minutes.txt"),
    );
    let r = s
        .admin(Method::POST, BASE)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let minutes = json_of(r, 201).await["data"].clone();
    assert_eq!(minutes["name"], "minutes.txt");
    assert_eq!(minutes["sha256"], sha256_hex(b"minutes of the meeting"));
    let elsewhere = sha256_hex(b"kept elsewhere");
    let r = s
        .admin_json(
            Method::POST,
            BASE,
            &json!({"name": "contract.pdf", "sha256": elsewhere.to_uppercase()}),
        )
        .await;
    let contract = json_of(r, 201).await["data"].clone();
    assert_eq!(contract["content"], "none");
    assert_eq!(contract["sha256"], elsewhere);
    assert!(contract.get("sizeBytes").is_none());

    assert_eq!(s.app().notarize_pending().await.unwrap(), Some(3));
    let client = s.admin_client();
    let stored = client.stored_file(id).await.unwrap();
    assert_eq!(stored.status, "NOTARIZED");
    assert_eq!(stored.leaf_index, Some(0));
    assert!(stored.notarized_at.is_some());

    // Every certificate proves its file with the published key, offline.
    let keys = keys(&s).await;
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].algorithm, "Ed25519");
    for (file, data) in [
        (&report, &b"quarterly report"[..]),
        (&minutes, &b"minutes of the meeting"[..]),
        (&contract, &b"kept elsewhere"[..]),
    ] {
        let cert = certificate(&s, file["id"].as_str().unwrap()).await;
        assert_eq!(cert.signed_tree_head.tree_size, 3);
        verify(&cert, &digest(data), &keys).unwrap();
        assert!(matches!(
            verify(&cert, &digest(b"something else"), &keys),
            Err(VerifyError::HashMismatch { .. })
        ));
    }

    // Lists filter by hash and name.
    let by_hash = client.stored_files(&[("sha256", &elsewhere)]).await;
    assert_eq!(by_hash.unwrap().data.len(), 1);
    let by_name = client.stored_files(&[("name", "minutes.txt")]).await;
    assert_eq!(by_name.unwrap().data[0].id.to_string(), minutes["id"]);
    let page = client.stored_files(&[("limit", "2")]).await.unwrap();
    assert_eq!(page.data.len(), 2);
    assert!(page.next_page.is_some());

    // The content comes back as stored.
    let r = s
        .admin(Method::GET, &format!("{BASE}/{id}/content"))
        .header("accept", "application/octet-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/octet-stream");
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"quarterly report");

    // Verify by content and by hash.
    let r = s
        .admin(Method::POST, "/api/notary/v2/verify")
        .header("content-type", "application/octet-stream")
        .body(&b"quarterly report"[..])
        .send()
        .await
        .unwrap();
    let v = json_of(r, 200).await["data"].clone();
    assert_eq!(v["notarized"], true);
    assert_eq!(v["storedFileIds"][0], id);
    let v_at = v["notarizedAt"].clone();
    assert!(v_at.is_string(), "{v}");
    let cert: Certificate = serde_json::from_value(v["certificate"].clone()).unwrap();
    verify(&cert, &digest(b"quarterly report"), &keys).unwrap();
    let r = s
        .admin_json(
            Method::POST,
            "/api/notary/v2/verify",
            &json!({"sha256": sha256_hex(b"never seen")}),
        )
        .await;
    let v = json_of(r, 200).await["data"].clone();
    assert_eq!(v["notarized"], false);
    assert!(v.get("certificate").is_none());

    // Anyone may check: without an account, the same certificate and when,
    // but not whose; the keys and tree heads are public too. Credentials,
    // when given, must be good.
    let r = s
        .request(Method::POST, "/api/notary/v2/verify")
        .header("content-type", "application/octet-stream")
        .body(&b"quarterly report"[..])
        .send()
        .await
        .unwrap();
    let public = json_of(r, 200).await["data"].clone();
    assert_eq!(public["notarized"], true, "{public}");
    assert_eq!(public["storedFileIds"], json!([]));
    assert_eq!(public["notarizedAt"], v_at);
    let public_cert: Certificate = serde_json::from_value(public["certificate"].clone()).unwrap();
    verify(&public_cert, &digest(b"quarterly report"), &keys).unwrap();
    let r = s
        .request(Method::POST, "/api/notary/v2/verify")
        .json(&json!({"sha256": sha256_hex(b"never seen")}))
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(r, 200).await["data"]["notarized"], false);
    for path in ["/api/notary/v2/keys", "/api/notary/v2/tree-heads"] {
        let r = s.request(Method::GET, path).send().await.unwrap();
        assert!(
            !json_of(r, 200).await["data"].as_array().unwrap().is_empty(),
            "{path}"
        );
        let r = s
            .request(Method::GET, path)
            .basic_auth(ADMIN_LOGIN, Some("not-the-password"))
            .send()
            .await
            .unwrap();
        assert_error(r, 401, 1001).await;
    }

    // A second batch extends the first: the consistency proof says so.
    upload(&s, "later.txt", b"a later file").await;
    assert_eq!(s.app().notarize_pending().await.unwrap(), Some(4));
    let heads = client.tree_heads().await.unwrap().data;
    let (first, second) = (&heads[0], &heads[1]);
    assert_eq!((first.head.tree_size, second.head.tree_size), (3, 4));
    assert_eq!(second.previous_size, 3);
    let root = |h: &api::LoggedTreeHead| hash32(&h.head.root_hash);
    let proof: Vec<[u8; 32]> = second.consistency_proof.iter().map(|h| hash32(h)).collect();
    assert!(merkle::verify_consistency(
        3,
        4,
        &root(first),
        &root(second),
        &proof
    ));
    assert!(!merkle::verify_consistency(
        3,
        4,
        &root(second),
        &root(second),
        &proof
    ));

    // Deleting removes the content, not the record or its proof.
    client.delete_stored_file(id).await.unwrap();
    let stored = client.stored_file(id).await.unwrap();
    assert_eq!(stored.content, "deleted");
    assert_eq!(stored.status, "NOTARIZED");
    assert!(!s.data_dir().join("notary/files").join(id).exists());
    let r = s
        .admin(Method::GET, &format!("{BASE}/{id}/content"))
        .send()
        .await
        .unwrap();
    let e = assert_error(r, 409, 2012).await;
    assert_eq!(e["errors"][0]["context"]["currentState"], "Deleted");
    let cert = certificate(&s, id).await;
    verify(&cert, &digest(b"quarterly report"), &keys).unwrap();
    s.stop().await;
}

#[tokio::test]
async fn certificates_come_as_xml_and_as_a_page() {
    let s = TestServer::set_up().await;
    let file = upload(&s, "<b>bold</b>.txt", b"markup in the name").await;
    s.app().notarize_pending().await.unwrap();
    let id = file["id"].as_str().unwrap();
    let r = s
        .admin(Method::GET, &format!("{BASE}/{id}/certificate"))
        .header("accept", "application/xml")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let xml = r.text().await.unwrap();
    assert!(
        xml.contains(&format!(
            "<sha256>{}</sha256>",
            sha256_hex(b"markup in the name")
        )),
        "{xml}"
    );
    assert!(xml.contains("<signedTreeHead>"), "{xml}");

    let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    let r = s
        .admin(Method::GET, &format!("{BASE}/{id}/certificate"))
        .header("accept", browser)
        .send()
        .await
        .unwrap();
    let page = html_of(r).await;
    assert!(page.contains(&sha256_hex(b"markup in the name")), "{page}");
    assert!(page.contains("&lt;b&gt;bold&lt;/b&gt;.txt"), "{page}");
    assert!(!page.contains("<b>bold</b>"), "{page}");

    // The certificate page links to the public verification page, whose
    // forms anyone (no account) posts a file or a hash to.
    assert!(page.contains("href=\"/api/notary/v2/verify\""), "{page}");
    let r = s
        .request(Method::GET, "/api/notary/v2/verify")
        .header("accept", browser)
        .send()
        .await
        .unwrap();
    let form = html_of(r).await;
    assert!(
        form.contains("action=\"/api/notary/v2/verify\"")
            && form.contains("enctype=\"multipart/form-data\"")
            && form.contains("name=\"file\"")
            && form.contains("name=\"sha256\""),
        "{form}"
    );
    let posted = |form: reqwest::multipart::Form, accept: &'static str| {
        s.request(Method::POST, "/api/notary/v2/verify")
            .header("accept", accept)
            .multipart(form)
            .send()
    };
    let file = || {
        reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(b"markup in the name".to_vec()).file_name("x.txt"),
        )
    };
    let answer = html_of(posted(file(), browser).await.unwrap()).await;
    assert!(
        answer.contains("<h1>Notarized</h1>")
            && answer.contains(&sha256_hex(b"markup in the name")),
        "{answer}"
    );
    let unknown = reqwest::multipart::Form::new().text("sha256", sha256_hex(b"never seen"));
    let answer = html_of(posted(unknown, browser).await.unwrap()).await;
    assert!(answer.contains("<h1>Not notarized</h1>"), "{answer}");
    // The same form from a program gets the JSON answer.
    let r = posted(file(), "application/json").await.unwrap();
    assert_eq!(json_of(r, 200).await["data"]["notarized"], true);
    // One of the two, and nothing else.
    let both = file().text("sha256", sha256_hex(b"never seen"));
    assert_error(posted(both, "application/json").await.unwrap(), 422, 3001).await;
    let other = reqwest::multipart::Form::new().text("nmae", "x");
    assert_error(posted(other, "application/json").await.unwrap(), 422, 3001).await;
    // (A form of no parts is no multipart body at all.)
    let none = reqwest::multipart::Form::new();
    assert_error(posted(none, "application/json").await.unwrap(), 400, 3000).await;

    // Everywhere else HTML is still not on offer.
    let r = s
        .admin(Method::GET, &format!("{BASE}/{id}"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_error(r, 406, 3003).await;
    s.stop().await;
}

#[tokio::test]
async fn bad_input_gets_contract_errors_and_leaves_nothing_half_written() {
    let s = TestServer::set_up().await;
    let post_json = |body: Value| {
        let s = &s;
        async move { s.admin_json(Method::POST, BASE, &body).await }
    };
    let e = assert_error(
        post_json(json!({"name": "x", "sha256": "abc"})).await,
        422,
        3001,
    )
    .await;
    assert_eq!(e["errors"][0]["context"]["field"], "sha256");
    let e = assert_error(
        post_json(json!({"sha256": "zz".repeat(32)})).await,
        422,
        3001,
    )
    .await;
    // (A name may be left out: the file is then named by its hash.)
    assert_eq!(e["errors"].as_array().unwrap().len(), 1, "{e}");
    assert_error(
        post_json(json!({"name": "x", "sha256": "ab".repeat(32), "extra": 1})).await,
        422,
        3001,
    )
    .await;

    // Content that disagrees with the hash the client sent.
    let r = s
        .admin(
            Method::POST,
            &format!("{BASE}?name=x&sha256={}", sha256_hex(b"what was meant")),
        )
        .header("content-type", "application/octet-stream")
        .body(&b"what was sent"[..])
        .send()
        .await
        .unwrap();
    let e = assert_error(r, 422, 3001).await;
    assert_eq!(e["errors"][0]["context"]["field"], "sha256");
    // A type that is none of the three.
    let r = s
        .admin(Method::POST, &format!("{BASE}?name=x"))
        .header("content-type", "text/plain")
        .body("text")
        .send()
        .await
        .unwrap();
    assert_error(r, 415, 3002).await;

    // A truncated upload: the connection ends before Content-Length.
    let addr = s.url.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    use tokio::io::AsyncWriteExt;
    let credentials = base64_basic();
    stream
        .write_all(
            format!(
                "POST {BASE}?name=cut.bin HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Basic {credentials}\r\n\
                 Content-Type: application/octet-stream\r\nContent-Length: 1000000\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    stream.write_all(&[7u8; 5000]).await.unwrap();
    // The upload is under way (its file is being written) when it breaks.
    let incoming = s.data_dir().join("notary/incoming");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_dir(&incoming).unwrap().next().is_none() {
        assert!(Instant::now() < deadline, "the upload never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(stream);

    // Unknown and malformed ids.
    let missing = uuid::Uuid::now_v7();
    let client = s.admin_client();
    assert_refused(client.stored_file(missing).await, 404, 2000);
    let r = s
        .admin(Method::GET, &format!("{BASE}/not-a-uuid"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // A registration's query claims are checked for form, like an upload's.
    let r = s
        .admin_json(
            Method::POST,
            &format!("{BASE}?sha256=abc"),
            &json!({"name": "h", "sha256": "ab".repeat(32)}),
        )
        .await;
    let e = assert_error(r, 422, 3001).await;
    assert_eq!(e["errors"][0]["context"]["field"], "sha256");
    // A registered hash has no content to download.
    let r = s
        .admin_json(
            Method::POST,
            &format!("{BASE}?sha256={}", "AB".repeat(32)),
            &json!({"name": "h", "sha256": "ab".repeat(32)}),
        )
        .await;
    let hash_only = json_of(r, 201).await["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = s
        .admin(Method::GET, &format!("{BASE}/{hash_only}/content"))
        .send()
        .await
        .unwrap();
    assert_error(r, 409, 2012).await;

    // Nothing of the refused or broken uploads is listed or left on disk.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_dir(&incoming).unwrap().next().is_some() {
        assert!(
            Instant::now() < deadline,
            "a broken upload stays in {incoming:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let list = s.admin_client().stored_files(&[]).await.unwrap().data;
    let names: Vec<&str> = list.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["h"]);
    assert_eq!(
        std::fs::read_dir(s.data_dir().join("notary/files"))
            .unwrap()
            .count(),
        0
    );
    // A multipart part that is not one of an upload's.
    let form = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(b"x".to_vec()))
        .text("nmae", "typo.txt");
    let r = s
        .admin(Method::POST, BASE)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let e = assert_error(r, 422, 3001).await;
    assert_eq!(e["errors"][0]["context"]["field"], "nmae");
    // Not bad input: without a name, a file is named by its SHA-256.
    let r = s
        .admin(Method::POST, BASE)
        .header("content-type", "application/octet-stream")
        .body(&b"anonymous"[..])
        .send()
        .await
        .unwrap();
    assert_eq!(
        json_of(r, 201).await["data"]["name"],
        sha256_hex(b"anonymous")
    );
    s.stop().await;
}

fn base64_basic() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("{ADMIN_LOGIN}:{ADMIN_PASSWORD}"))
}

#[tokio::test]
async fn concurrent_uploads_of_the_same_content_each_get_their_own_leaf() {
    let s = TestServer::set_up().await;
    let uploads = (0..12).map(|i| {
        let s = &s;
        async move { upload(s, &format!("copy-{i}"), b"the same bytes").await }
    });
    let files = futures::future::join_all(uploads).await;
    s.app().notarize_pending().await.unwrap();
    let keys = keys(&s).await;
    let mut leaves = std::collections::BTreeSet::new();
    for f in &files {
        let cert = certificate(&s, f["id"].as_str().unwrap()).await;
        verify(&cert, &digest(b"the same bytes"), &keys).unwrap();
        leaves.insert(cert.leaf_index);
    }
    assert_eq!(leaves.len(), 12, "one leaf each");
    assert_eq!(leaves.last(), Some(&11));
    s.stop().await;
}

#[tokio::test]
async fn nephele_notary_verify_works_offline_and_refuses_what_was_tampered_with() {
    let s = TestServer::set_up().await;
    let file = upload(&s, "deed.txt", b"the deed").await;
    upload(&s, "other.txt", b"another").await;
    upload(&s, "third.txt", b"a third").await;
    s.app().notarize_pending().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    let cert = get(
        &s,
        &format!("{BASE}/{}/certificate", file["id"].as_str().unwrap()),
    )
    .await;
    let keys = get(&s, "/api/notary/v2/keys").await;
    s.stop().await;

    std::fs::write(path("deed.txt"), b"the deed").unwrap();
    std::fs::write(path("cert.json"), cert.to_string()).unwrap();
    std::fs::write(path("keys.json"), keys.to_string()).unwrap();
    let run = |file: &str, cert: &str, keys: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_nephele"))
            .args(["notary", "verify"])
            .arg(path(file))
            .arg("--certificate")
            .arg(path(cert))
            .arg("--keys")
            .arg(path(keys))
            .output()
            .unwrap()
    };
    // The server is gone: this is offline.
    let ok = run("deed.txt", "cert.json", "keys.json");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).starts_with("OK:"));

    std::fs::write(path("forged.txt"), b"the deed, amended").unwrap();
    let tampered_file = run("forged.txt", "cert.json", "keys.json");
    assert!(!tampered_file.status.success());
    assert!(String::from_utf8_lossy(&tampered_file.stderr).contains("SHA-256"));

    let mut bad_proof = cert.clone();
    let hash = bad_proof["data"]["inclusionProof"][0]
        .as_str()
        .unwrap()
        .to_owned();
    let flipped = format!(
        "{}{}",
        if &hash[..1] == "0" { "1" } else { "0" },
        &hash[1..]
    );
    bad_proof["data"]["inclusionProof"][0] = json!(flipped);
    std::fs::write(path("bad-proof.json"), bad_proof.to_string()).unwrap();
    let tampered_proof = run("deed.txt", "bad-proof.json", "keys.json");
    assert!(!tampered_proof.status.success());
    assert!(String::from_utf8_lossy(&tampered_proof.stderr).contains("inclusion proof"));

    // The right key id with someone else's key.
    let (other, _) = nephele_notary::certificate::NotarySigner::generate("other").unwrap();
    let mut wrong = keys.clone();
    wrong["data"][0]["publicKey"] = json!(other.key().public_key);
    std::fs::write(path("wrong-keys.json"), wrong.to_string()).unwrap();
    let wrong_key = run("deed.txt", "cert.json", "wrong-keys.json");
    assert!(!wrong_key.status.success());
    assert!(String::from_utf8_lossy(&wrong_key.stderr).contains("signature"));
}

#[tokio::test]
async fn a_kill_between_upload_and_batch_notarizes_the_file_after_restart_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let (db_url, _pg) = test_database(dir.path()).await;
    let data = dir.path().to_str().unwrap().to_owned();
    let mut first = serve(&data, &db_url, &["--notary-batch-interval", "1h"]);
    let url = first.url();
    set_up_with(&url, TOKEN).await;
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{url}{BASE}?name=survivor.txt"))
        .basic_auth(ADMIN_LOGIN, Some(ADMIN_PASSWORD))
        .header("content-type", "application/octet-stream")
        .body(&b"survives a kill"[..])
        .send()
        .await
        .unwrap();
    let id = json_of(r, 201).await["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    first.kill9();

    let mut second = serve(&data, &db_url, &["--notary-batch-interval", "100ms"]);
    let url = second.url();
    let deadline = Instant::now() + Duration::from_secs(20);
    let file = loop {
        let r = http
            .get(format!("{url}{BASE}/{id}"))
            .basic_auth(ADMIN_LOGIN, Some(ADMIN_PASSWORD))
            .send()
            .await
            .unwrap();
        let file = json_of(r, 200).await["data"].clone();
        if file["status"] == "NOTARIZED" {
            break file;
        }
        assert!(Instant::now() < deadline, "never notarized: {file}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(file["leafIndex"], 0);
    // Later batches find nothing more to add: one leaf, one head.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let r = http
        .get(format!("{url}/api/notary/v2/tree-heads"))
        .basic_auth(ADMIN_LOGIN, Some(ADMIN_PASSWORD))
        .send()
        .await
        .unwrap();
    let heads = json_of(r, 200).await["data"].clone();
    assert_eq!(heads.as_array().unwrap().len(), 1, "{heads}");
    assert_eq!(heads[0]["treeSize"], 1);
    let r = http
        .get(format!("{url}{BASE}/{id}/content"))
        .basic_auth(ADMIN_LOGIN, Some(ADMIN_PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"survives a kill");
    second.terminate();
}

#[tokio::test]
async fn uploads_past_the_request_body_limit_stream_even_with_an_idempotency_key() {
    let s = TestServer::set_up().await;
    // Four times the 1 MiB limit of every other body.
    let big = vec![42u8; 4 * 1024 * 1024];
    let r = s
        .admin(Method::POST, &format!("{BASE}?name=big.bin"))
        .header("content-type", "application/octet-stream")
        .header("idempotency-key", "big-upload")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    let file = json_of(r, 201).await["data"].clone();
    assert_eq!(file["sizeBytes"], 4 * 1024 * 1024);
    assert_eq!(file["sha256"], sha256_hex(&big));
    s.stop().await;

    // Past the notary's own limit: 413, and nothing kept.
    let s = TestServer::start_with(|c| c.notary_max_file_bytes = 1000).await;
    let r = s.post("/occm/setup/init", &setup_body()).await;
    assert_eq!(r.status(), 201);
    let r = s
        .admin(Method::POST, &format!("{BASE}?name=big.bin"))
        .header("content-type", "application/octet-stream")
        .body(vec![1u8; 5000])
        .send()
        .await
        .unwrap();
    let e = assert_error(r, 413, 3000).await;
    assert_eq!(e["errors"][0]["context"]["limit"], 1000);
    let files = s.admin_client().stored_files(&[]).await.unwrap();
    assert!(files.data.is_empty());
    // A verification hashes no more than a file may hold, declared or
    // streamed (chunked, no Content-Length).
    let r = s
        .request(Method::POST, "/api/notary/v2/verify")
        .header("content-type", "application/octet-stream")
        .body(vec![1u8; 5000])
        .send()
        .await
        .unwrap();
    assert_error(r, 413, 3000).await;
    let addr = s.url.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut request = format!(
        "POST /api/notary/v2/verify HTTP/1.1\r\nHost: {addr}\r\n\
         Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\
         Connection: close\r\n\r\n"
    )
    .into_bytes();
    for _ in 0..5 {
        request.extend_from_slice(b"3e8\r\n");
        request.extend_from_slice(&[2u8; 1000]);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    // The server may answer and close before all of it is read.
    let _ = stream.write_all(&request).await;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert_eq!(
        std::fs::read_dir(s.data_dir().join("notary/incoming"))
            .unwrap()
            .count(),
        0
    );
    s.stop().await;
}

#[tokio::test]
async fn a_backlog_is_notarized_in_batches_of_the_batch_size_each_extending_the_last() {
    let s = TestServer::start_with(|c| c.notary_batch_size = 2).await;
    let r = s.post("/occm/setup/init", &setup_body()).await;
    assert_eq!(r.status(), 201);
    for (i, data) in [&b"one"[..], b"two", b"three", b"four", b"five"]
        .into_iter()
        .enumerate()
    {
        upload(&s, &format!("f{i}"), data).await;
    }
    // The batcher wakes at two pending and may cut some batches itself.
    s.app().notarize_pending().await.unwrap();
    let heads = s.admin_client().tree_heads().await.unwrap().data;
    let sizes: Vec<u64> = heads.iter().map(|h| h.head.tree_size).collect();
    assert_eq!(sizes.last(), Some(&5), "{heads:?}");
    assert!(
        sizes.len() >= 3 && sizes[0] <= 2,
        "batches of at most 2: {sizes:?}"
    );
    for pair in heads.windows(2) {
        let added = pair[1].head.tree_size - pair[0].head.tree_size;
        assert!((1..=2).contains(&added), "{sizes:?}");
        assert_eq!(pair[1].previous_size, pair[0].head.tree_size);
    }
    for pair in heads.windows(2) {
        let proof: Vec<[u8; 32]> = pair[1]
            .consistency_proof
            .iter()
            .map(|h| hash32(h))
            .collect();
        assert!(merkle::verify_consistency(
            pair[0].head.tree_size,
            pair[1].head.tree_size,
            &hash32(&pair[0].head.root_hash),
            &hash32(&pair[1].head.root_hash),
            &proof
        ));
    }
    assert_eq!(
        s.app().notarize_pending().await.unwrap(),
        None,
        "nothing left"
    );
    s.stop().await;
}

#[tokio::test]
async fn content_no_record_names_is_removed_at_start_once_old() {
    let s = TestServer::set_up().await;
    let kept = upload(&s, "kept.txt", b"recorded").await;
    let files = s.data_dir().join("notary/files");
    let orphan = files.join(uuid::Uuid::now_v7().to_string());
    let young = files.join(uuid::Uuid::now_v7().to_string());
    std::fs::write(&orphan, b"a crash between rename and record").unwrap();
    std::fs::write(&young, b"maybe another node's upload in flight").unwrap();
    let aged = std::process::Command::new("touch")
        .args(["-d", "2 hours ago"])
        .arg(&orphan)
        .status()
        .unwrap();
    assert!(aged.success());
    std::process::Command::new("touch")
        .args(["-d", "2 hours ago"])
        .arg(files.join(kept["id"].as_str().unwrap()))
        .status()
        .unwrap();

    let s = s.restart(|_| {}).await;
    // The sweep runs beside serving, once, soon after the start.
    let deadline = Instant::now() + Duration::from_secs(10);
    while orphan.exists() {
        assert!(Instant::now() < deadline, "an old orphan is removed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(young.exists(), "a young one may still be recorded");
    let r = s
        .admin(
            Method::GET,
            &format!("{BASE}/{}/content", kept["id"].as_str().unwrap()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"recorded");
    s.stop().await;
}

/// Verifying without an account costs the server a hash of what is sent:
/// an address gets so many a minute, and then 429 until it may again.
#[tokio::test]
async fn verifications_without_an_account_are_limited_per_address() {
    let s = TestServer::set_up().await;
    let ask = || {
        s.request(Method::POST, "/api/notary/v2/verify")
            .json(&json!({"sha256": sha256_hex(b"anything")}))
            .send()
    };
    for _ in 0..nephele_app::notary::ANONYMOUS_VERIFICATIONS_PER_MINUTE {
        assert_eq!(ask().await.unwrap().status(), 200);
    }
    let r = ask().await.unwrap();
    let retry_after: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_error(r, 429, 3005).await;
    // With an account there is no such limit: the caller is known.
    let r = s
        .admin_json(
            Method::POST,
            "/api/notary/v2/verify",
            &json!({"sha256": sha256_hex(b"anything")}),
        )
        .await;
    assert_eq!(r.status(), 200);
    s.stop().await;
}
