//! Operations endpoints (SPEC §8).

use crate::support::*;
use reqwest::Method;

#[tokio::test]
async fn health_and_readiness() {
    let s = TestServer::start().await;
    assert_eq!(json_of(s.get("/healthz").await, 200).await["status"], "ok");
    assert_eq!(
        json_of(s.get("/readyz").await, 200).await["status"],
        "ready"
    );
    s.stop().await;
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let s = TestServer::start().await;
    s.get("/occm/setup/status").await;
    s.get("/api/v2/whatever").await;
    let r = s.get("/metrics").await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(
        text.contains(
            "nephele_http_requests_total{method=\"GET\",route=\"/occm/setup/status\",status=\"200\"} 1"
        ),
        "{text}"
    );
    assert!(text.contains("status=\"420\""), "{text}");
    assert!(
        text.contains("nephele_http_request_duration_seconds_bucket"),
        "{text}"
    );
    s.stop().await;
}

#[tokio::test]
async fn metrics_speak_the_prometheus_text_and_openmetrics() {
    let s = TestServer::set_up().await;
    s.admin(Method::GET, "/api/v2/me").send().await.unwrap();
    // The classic text by default: counters named with _total, HELP on
    // every family, no # EOF.
    let r = s.get("/metrics").await;
    assert_eq!(
        r.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = r.text().await.unwrap();
    assert!(
        text.contains("# TYPE nephele_http_requests_total counter\n"),
        "{text}"
    );
    for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
        let name = line.split(' ').nth(2).unwrap();
        assert!(
            text.contains(&format!("# HELP {name} ")),
            "no HELP for {name}"
        );
    }
    assert!(
        !text.contains("# EOF") && !text.contains("_created"),
        "{text}"
    );
    for sample in [
        "process_cpu_seconds_total ",
        "process_resident_memory_bytes ",
        "process_open_fds ",
        "process_max_fds ",
        "process_start_time_seconds ",
        &format!(
            "nephele_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        ),
        // SQLite's readers and writer, or PostgreSQL's one pool.
        "nephele_db_connections{pool=\"",
        "nephele_login_locks 0",
    ] {
        assert!(text.contains(sample), "{sample}: {text}");
    }
    // OpenMetrics when the scraper asks for it, as Prometheus does.
    let r = s
        .request(Method::GET, "/metrics")
        .header(
            "accept",
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let text = r.text().await.unwrap();
    assert!(
        text.contains("# TYPE nephele_http_requests counter\n"),
        "{text}"
    );
    assert!(text.contains("# TYPE nephele_build info\n"), "{text}");
    assert!(text.ends_with("# EOF\n"), "{text}");
    s.stop().await;
}

#[tokio::test]
async fn the_openapi_document_is_served_and_matches_the_committed_one() {
    let s = TestServer::set_up().await;
    let served = s.get("/api/openapi.json").await.text().await.unwrap();
    let doc: serde_json::Value = serde_json::from_str(&served).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/occm/setup/init"]["post"].is_object());
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../openapi/nephele.json");
    if std::env::var_os("NEPHELE_UPDATE_OPENAPI").is_some() {
        std::fs::write(path, &served).unwrap();
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == served,
        "openapi/nephele.json is out of date: run `NEPHELE_UPDATE_OPENAPI=1 cargo test -p nephele openapi` and commit it"
    );
    s.stop().await;
}

#[tokio::test]
async fn the_reference_page_is_self_contained() {
    let s = TestServer::set_up().await;
    let r = s.get("/docs").await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    let html = r.text().await.unwrap();
    assert!(html.contains("/occm/setup/init"));
    assert!(!html.contains("<script"));
    // The errors every operation shares are one table, not a row in each.
    assert!(
        html.contains("<section id=\"shared-errors\">"),
        "no shared table"
    );
    assert_eq!(
        html.matches("Unsupported media type (3002)").count(),
        1,
        "the shared errors are repeated"
    );
    assert!(html.contains("<a href=\"#shared-errors\">shared errors</a>"));
    s.stop().await;
}
