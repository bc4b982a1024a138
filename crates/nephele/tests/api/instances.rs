//! Instances and tasks through the API: the lifecycle, 409s, failures and
//! their undo, quotas, cancellation, long-polls and bad input.

use crate::support::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

async fn instance(s: &TestServer, id: &str) -> (Value, String) {
    let r = s
        .admin(Method::GET, &format!("/api/v2/instances/{id}"))
        .send()
        .await
        .unwrap();
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    (json_of(r, 200).await["data"].clone(), etag)
}

async fn operate(s: &TestServer, id: &str, op: &str) -> reqwest::Response {
    s.admin(Method::POST, &format!("/api/v2/instances/{id}/{op}"))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_instance_lives_its_whole_life_through_tasks() {
    let s = TestServer::set_up().await;
    let root = s.root_org().await;
    let r = s
        .admin(Method::POST, "/api/v2/instances")
        .header("x-agent-id", "agent-7")
        .json(&json!({"name": "web-1", "image": "ubuntu-24.04", "cpu": 2, "memoryMiB": 2048}))
        .send()
        .await
        .unwrap();
    let task = accepted_task(r).await;
    let t = s.finished_task(&task).await;
    assert_eq!(t["taskStatus"], "SUCCESS", "{t}");
    assert_eq!(t["operation"], "create");
    assert_eq!(t["resourceType"], "instances");
    assert_eq!(t["agentId"], "agent-7");
    assert_eq!(t["progress"], 100);
    assert_eq!(t["organizationId"], root.as_str());
    assert!(t["startedAt"].is_string() && t["completedAt"].is_string());
    assert_eq!(t["result"]["state"], "Running");
    assert!(t["error"].is_null());
    let steps: Vec<&str> = t["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["create machine", "start machine", "mark running"]);
    let id = t["resourceId"].as_str().unwrap().to_owned();

    let (vm, etag) = instance(&s, &id).await;
    assert_eq!(vm["state"], "Running");
    assert_eq!(vm["name"], "web-1");
    assert_eq!(vm["cpu"], 2);
    assert_eq!(vm["memoryMiB"], 2048);
    assert_eq!(vm["diskGiB"], 10);
    assert_eq!(vm["image"], "ubuntu-24.04");
    assert_eq!(vm["organizationId"], root.as_str());
    assert!(vm["datacenter"].is_string());
    assert_eq!(etag, format!("\"{}\"", vm["version"]));

    // Lists filter by state and name.
    let list = |q: &'static str| {
        let s = &s;
        async move {
            let r = s
                .admin(Method::GET, &format!("/api/v2/instances{q}"))
                .send()
                .await
                .unwrap();
            json_of(r, 200).await["data"].as_array().unwrap().len()
        }
    };
    assert_eq!(list("").await, 1);
    assert_eq!(list("?state=Running").await, 1);
    assert_eq!(list("?state=Stopped").await, 0);
    assert_eq!(list("?name=web-1").await, 1);
    assert_eq!(list("?name=web-2").await, 0);

    // Resizing needs Stopped.
    let r = s
        .admin_json(
            Method::PATCH,
            &format!("/api/v2/instances/{id}"),
            &json!({"cpu": 4}),
        )
        .await;
    let body = assert_error(r, 409, 2012).await;
    assert_eq!(body["errors"][0]["context"]["currentState"], "Running");
    assert_eq!(
        body["errors"][0]["context"]["expectedStates"],
        json!(["Stopped"])
    );
    // Renaming does not.
    let r = s
        .admin_json(
            Method::PATCH,
            &format!("/api/v2/instances/{id}"),
            &json!({"name": "web-one"}),
        )
        .await;
    assert_eq!(json_of(r, 200).await["data"]["name"], "web-one");

    // Start needs Stopped.
    let body = assert_error(operate(&s, &id, "start").await, 409, 2012).await;
    assert_eq!(body["errors"][0]["context"]["type"], "instances");
    assert_eq!(body["errors"][0]["context"]["id"], id.as_str());
    assert_eq!(
        body["errors"][0]["context"]["expectedStates"],
        json!(["Stopped"])
    );

    let t = s
        .finished_task(&accepted_task(operate(&s, &id, "reboot").await).await)
        .await;
    assert_eq!(t["taskStatus"], "SUCCESS", "{t}");
    assert_eq!(t["result"]["state"], "Running");

    let t = s
        .finished_task(&accepted_task(operate(&s, &id, "stop").await).await)
        .await;
    assert_eq!(t["taskStatus"], "SUCCESS", "{t}");
    assert_eq!(instance(&s, &id).await.0["state"], "Stopped");
    let body = assert_error(operate(&s, &id, "stop").await, 409, 2012).await;
    assert_eq!(body["errors"][0]["context"]["currentState"], "Stopped");
    assert_eq!(
        body["errors"][0]["context"]["expectedStates"],
        json!(["Running"])
    );

    let r = s
        .admin_json(
            Method::PATCH,
            &format!("/api/v2/instances/{id}"),
            &json!({"cpu": 4, "memoryMiB": 4096}),
        )
        .await;
    let vm = json_of(r, 200).await["data"].clone();
    assert_eq!(
        (vm["cpu"].clone(), vm["memoryMiB"].clone()),
        (json!(4), json!(4096))
    );

    let t = s
        .finished_task(&accepted_task(operate(&s, &id, "start").await).await)
        .await;
    assert_eq!(t["result"]["cpu"], 4);

    // A stale If-Match refuses the delete; the right one lets it through.
    let r = s
        .admin(Method::DELETE, &format!("/api/v2/instances/{id}"))
        .header("if-match", "\"1\"")
        .send()
        .await
        .unwrap();
    assert_error(r, 412, 2021).await;
    let r = s
        .admin(Method::DELETE, &format!("/api/v2/instances/{id}"))
        .send()
        .await
        .unwrap();
    let t = s.finished_task(&accepted_task(r).await).await;
    assert_eq!(t["taskStatus"], "SUCCESS", "{t}");
    assert!(t["result"].is_null());
    let r = s
        .admin(Method::GET, &format!("/api/v2/instances/{id}"))
        .send()
        .await
        .unwrap();
    assert_error(r, 404, 2000).await;

    // Every task of the instance, newest first, filtered.
    let r = s
        .admin(Method::GET, &format!("/api/v2/tasks?resourceId={id}"))
        .send()
        .await
        .unwrap();
    let ops: Vec<String> = json_of(r, 200).await["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["operation"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ops, ["delete", "start", "stop", "reboot", "create"]);
    let r = s
        .admin(Method::GET, "/api/v2/tasks?status=FAILED")
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(r, 200).await["data"], json!([]));

    // Metrics count the tasks; the audit log has one event per operation.
    let metrics = s.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("nephele_tasks_finished_total{operation=\"create\",status=\"SUCCESS\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("nephele_task_duration_seconds_bucket"));
    let r = s
        .admin(Method::GET, "/api/v2/audit-events?action=instances.create")
        .send()
        .await
        .unwrap();
    let events = json_of(r, 200).await["data"].clone();
    assert_eq!(events.as_array().unwrap().len(), 1, "{events}");
    assert_eq!(events[0]["agentId"], "agent-7");
    s.stop().await;
}

#[tokio::test]
async fn one_operation_at_a_time_and_the_running_task_is_named() {
    let s = TestServer::start_with(|c| c.sim_latency = Duration::from_millis(400)).await;
    s.post("/occm/setup/init", &setup_body()).await;
    let root = s.root_org().await;
    let task = s.start_instance_creation(&root, "slow", "debian-12").await;
    let id = s.task(&task).await["resourceId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(instance(&s, &id).await.0["state"], "Provisioning");
    for op in ["stop", "start", "reboot"] {
        let body = assert_error(operate(&s, &id, op).await, 409, 2013).await;
        assert_eq!(
            body["errors"][0]["context"]["taskId"],
            task.as_str(),
            "{op}"
        );
    }
    let r = s
        .admin(Method::DELETE, &format!("/api/v2/instances/{id}"))
        .send()
        .await
        .unwrap();
    assert_error(r, 409, 2013).await;
    let r = s
        .admin_json(
            Method::PATCH,
            &format!("/api/v2/instances/{id}"),
            &json!({"cpu": 2}),
        )
        .await;
    assert_error(r, 409, 2013).await;
    // A long-poll that ends before the task does answers PENDING.
    let r = s
        .admin(Method::GET, &format!("/api/v2/tasks/{task}?wait=0"))
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(r, 200).await["data"]["taskStatus"], "PENDING");
    let t = s.finished_task(&task).await;
    assert_eq!(t["taskStatus"], "SUCCESS", "{t}");
    // Two operations raced: exactly one is accepted.
    let (a, b) = tokio::join!(operate(&s, &id, "stop"), operate(&s, &id, "reboot"));
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort();
    assert_eq!(statuses, [202, 409]);
    s.stop().await;
}

#[tokio::test]
async fn a_slow_task_shows_each_step_done_while_the_next_runs() {
    // Quick steps are recorded together; a step that takes a while has
    // the ones before it recorded meanwhile, so `progress` moves.
    let s = TestServer::start_with(|c| c.sim_latency = Duration::from_millis(600)).await;
    s.post("/occm/setup/init", &setup_body()).await;
    let root = s.root_org().await;
    let task = s
        .start_instance_creation(&root, "watched", "debian-12")
        .await;
    let mut seen = Vec::new();
    loop {
        let t = s.task(&task).await;
        if t["taskStatus"] != "PENDING" {
            assert_eq!(t["taskStatus"], "SUCCESS", "{t}");
            break;
        }
        let steps: Vec<String> = t["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_owned())
            .collect();
        let progress = t["progress"].as_i64().unwrap();
        if seen.last() != Some(&(progress, steps.clone())) {
            seen.push((progress, steps));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // "mark running" is quick: the machine's start is recorded with the
    // task's end, unless a busy machine held the mark up.
    let done = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
    assert_eq!(
        seen[..2],
        [(0, done(&[])), (33, done(&["create machine"]))],
        "{seen:?}"
    );
    assert!(
        seen[2..].is_empty() || seen[2..] == [(66, done(&["create machine", "start machine"]))],
        "{seen:?}"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_failed_step_is_undone_and_the_instance_ends_in_a_defined_state() {
    let s = TestServer::set_up().await;
    let root = s.root_org().await;

    // Creation fails at start: the machine is removed, the record too.
    let task = s
        .start_instance_creation(&root, "doomed", "fail-on-start")
        .await;
    let t = s.finished_task(&task).await;
    assert_eq!(t["taskStatus"], "FAILED", "{t}");
    assert_eq!(t["error"]["code"], 5003);
    assert!(
        t["error"]["message"].as_str().unwrap().contains("start"),
        "{t}"
    );
    assert!(t["result"].is_null());
    let log: Vec<String> = t["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            format!(
                "{} {} {}",
                s["action"].as_str().unwrap(),
                s["name"].as_str().unwrap(),
                s["outcome"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        log,
        [
            "do create machine done",
            "do start machine failed",
            "undo start machine done",
            "undo create machine done"
        ]
    );
    let id = t["resourceId"].as_str().unwrap();
    let r = s
        .admin(Method::GET, &format!("/api/v2/instances/{id}"))
        .send()
        .await
        .unwrap();
    assert_error(r, 404, 2000).await;

    // When the undo fails too, the instance is left in Error.
    let task = s
        .start_instance_creation(&root, "broken", "fail-on-start+fail-on-delete")
        .await;
    let t = s.finished_task(&task).await;
    assert_eq!(t["taskStatus"], "FAILED", "{t}");
    assert_eq!(t["error"]["context"]["undoFailed"], true, "{t}");
    let broken = t["resourceId"].as_str().unwrap().to_owned();
    assert_eq!(instance(&s, &broken).await.0["state"], "Error");

    // A failed stop leaves it running.
    let task = s
        .start_instance_creation(&root, "sticky", "fail-on-stop")
        .await;
    let t = s.finished_task(&task).await;
    let id = t["resourceId"].as_str().unwrap().to_owned();
    let t = s
        .finished_task(&accepted_task(operate(&s, &id, "stop").await).await)
        .await;
    assert_eq!(t["taskStatus"], "FAILED", "{t}");
    assert_eq!(instance(&s, &id).await.0["state"], "Running");

    let r = s
        .admin(Method::GET, "/api/v2/tasks?status=FAILED")
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(r, 200).await["data"].as_array().unwrap().len(), 3);
    s.stop().await;
}

#[tokio::test]
async fn quotas_are_set_from_above_and_never_exceeded() {
    let s = TestServer::set_up().await;
    let reseller = s.create_org("Reseller", None).await;
    let customer = s.create_org("Customer", Some(&reseller)).await;
    s.create_user(&reseller, "reseller-admin", &["admin"]).await;

    // The root's admin limits the reseller; the reseller's admin cannot
    // raise its own quota.
    let r = s
        .admin_json(
            Method::PUT,
            &format!("/api/v2/organizations/{reseller}/quota"),
            &json!({"instances": 2, "vcpus": 3, "memoryMiB": 4096}),
        )
        .await;
    let q = json_of(r, 200).await["data"].clone();
    assert_eq!(
        (q["instances"].clone(), q["vcpus"].clone()),
        (json!(2), json!(3))
    );
    let r = s
        .as_user(
            Method::PUT,
            &format!("/api/v2/organizations/{reseller}/quota"),
            "reseller-admin",
        )
        .json(&json!({"instances": 100}))
        .send()
        .await
        .unwrap();
    assert_error(r, 403, 1003).await;
    // … but sets its customer's, never above its own.
    let r = s
        .as_user(
            Method::PUT,
            &format!("/api/v2/organizations/{customer}/quota"),
            "reseller-admin",
        )
        .json(&json!({"instances": 5, "vcpus": 1}))
        .send()
        .await
        .unwrap();
    let body = assert_error(r, 422, 3001).await;
    assert_eq!(body["errors"][0]["context"]["field"], "instances");
    let r = s
        .as_user(
            Method::PUT,
            &format!("/api/v2/organizations/{customer}/quota"),
            "reseller-admin",
        )
        .json(&json!({"instances": 1, "vcpus": 1}))
        .send()
        .await
        .unwrap();
    let q = json_of(r, 200).await["data"].clone();
    assert_eq!(q["memoryMiB"], json!(null), "a missing limit is none: {q}");
    let r = s
        .admin_json(
            Method::PUT,
            &format!("/api/v2/organizations/{}/quota", s.root_org().await),
            &json!({}),
        )
        .await;
    assert_error(r, 403, 1003).await;

    // Within the quota, then over it.
    let r1 = s.create_instance(&reseller, "r1").await;
    let r = s
        .admin_json(
            Method::POST,
            &format!("/api/v2/instances?org_id={reseller}"),
            &json!({"name": "r2", "image": "debian-12", "cpu": 4}),
        )
        .await;
    let body = assert_error(r, 400, 3004).await;
    let ctx = &body["errors"][0]["context"];
    assert_eq!(
        (
            ctx["quota"].clone(),
            ctx["limit"].clone(),
            ctx["requested"].clone()
        ),
        (json!("vcpus"), json!(3), json!(4))
    );
    let r2 = s.create_instance(&reseller, "r2").await;
    let r = s
        .admin_json(
            Method::POST,
            &format!("/api/v2/instances?org_id={reseller}"),
            &json!({"name": "r3", "image": "debian-12"}),
        )
        .await;
    let body = assert_error(r, 400, 3004).await;
    assert_eq!(body["errors"][0]["context"]["quota"], "instances");
    let r = s
        .admin(
            Method::GET,
            &format!("/api/v2/organizations/{reseller}/quota"),
        )
        .send()
        .await
        .unwrap();
    let q = json_of(r, 200).await["data"].clone();
    assert_eq!(
        q["usage"],
        json!({"instances": 2, "vcpus": 2, "memoryMiB": 512})
    );

    // Resizing counts too; an organization holding instances is not deleted.
    s.finished_task(&accepted_task(operate(&s, &r1, "stop").await).await)
        .await;
    let r = s
        .admin_json(
            Method::PATCH,
            &format!("/api/v2/instances/{r1}"),
            &json!({"cpu": 3}),
        )
        .await;
    assert_error(r, 400, 3004).await;
    // The customer's instances count in the reseller's quota.
    let r = s
        .admin_json(
            Method::POST,
            &format!("/api/v2/instances?org_id={customer}"),
            &json!({"name": "c1", "image": "debian-12"}),
        )
        .await;
    let body = assert_error(r, 400, 3004).await;
    assert_eq!(
        body["errors"][0]["context"],
        json!({"quota": "instances", "limitedBy": "ancestor", "available": 0, "requested": 1})
    );
    let r = s
        .admin(Method::DELETE, &format!("/api/v2/instances/{r2}"))
        .send()
        .await
        .unwrap();
    s.finished_task(&accepted_task(r).await).await;
    s.create_instance(&customer, "c1").await;
    let r = s
        .admin(
            Method::GET,
            &format!("/api/v2/organizations/{reseller}/quota"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(r, 200).await["data"]["usage"]["instances"], 2);
    let r = s
        .admin(Method::DELETE, &format!("/api/v2/organizations/{customer}"))
        .send()
        .await
        .unwrap();
    let body = assert_error(r, 409, 2012).await;
    assert_eq!(body["errors"][0]["context"]["instances"], 1);
    s.stop().await;
}

#[tokio::test]
async fn a_task_not_yet_started_can_be_cancelled_and_nothing_else() {
    // One worker, slow operations: the second task waits its turn.
    let s = TestServer::start_with(|c| {
        c.sim_latency = Duration::from_millis(500);
        c.task_workers = 1;
    })
    .await;
    s.post("/occm/setup/init", &setup_body()).await;
    let root = s.root_org().await;
    let first = s.start_instance_creation(&root, "first", "debian-12").await;
    let second = s
        .start_instance_creation(&root, "second", "debian-12")
        .await;
    let r = s
        .admin(Method::DELETE, &format!("/api/v2/tasks/{second}"))
        .send()
        .await
        .unwrap();
    let t = json_of(r, 200).await["data"].clone();
    assert_eq!(t["taskStatus"], "FAILED");
    assert_eq!(t["error"]["context"]["currentState"], "CANCELLED");
    let id = t["resourceId"].as_str().unwrap();
    let r = s
        .admin(Method::GET, &format!("/api/v2/instances/{id}"))
        .send()
        .await
        .unwrap();
    assert_error(r, 404, 2000).await;

    let r = s
        .admin(Method::DELETE, &format!("/api/v2/tasks/{first}"))
        .send()
        .await
        .unwrap();
    let body = assert_error(r, 409, 2012).await;
    assert_eq!(
        body["errors"][0]["context"]["expectedStates"],
        json!(["PENDING"])
    );
    let t = s.finished_task(&first).await;
    assert_eq!(t["taskStatus"], "SUCCESS");
    let r = s
        .admin(Method::DELETE, &format!("/api/v2/tasks/{first}"))
        .send()
        .await
        .unwrap();
    let body = assert_error(r, 409, 2012).await;
    assert_eq!(body["errors"][0]["context"]["currentState"], "SUCCESS");
    s.stop().await;
}

#[tokio::test]
async fn tasks_beyond_the_free_workers_wait_their_turn_and_each_runs_once() {
    // Two workers, slow operations: the first two creates are taken at
    // once by this node, the rest queue until a worker frees up.
    let s = TestServer::start_with(|c| {
        c.sim_latency = Duration::from_millis(300);
        c.task_workers = 2;
    })
    .await;
    s.post("/occm/setup/init", &setup_body()).await;
    let root = s.root_org().await;
    let mut tasks = Vec::new();
    for n in 0..5 {
        let name = format!("queued-{n}");
        tasks.push(s.start_instance_creation(&root, &name, "debian-12").await);
    }
    let mut started = Vec::new();
    for task in &tasks {
        let t = s.task(task).await;
        assert_eq!(t["taskStatus"], "PENDING", "{t}");
        started.push(t["startedAt"].is_string());
    }
    assert_eq!(started, [true, true, false, false, false]);
    for task in &tasks {
        let t = s.finished_task(task).await;
        assert_eq!(t["taskStatus"], "SUCCESS", "{t}");
        let steps: Vec<(&str, &str)> = t["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["name"].as_str().unwrap(), s["action"].as_str().unwrap()))
            .collect();
        assert_eq!(
            steps,
            [
                ("create machine", "do"),
                ("start machine", "do"),
                ("mark running", "do")
            ]
        );
    }
    s.stop().await;
}

#[tokio::test]
async fn the_same_idempotency_key_returns_the_same_task() {
    let s = TestServer::set_up().await;
    let send = || {
        s.admin(Method::POST, "/api/v2/instances")
            .header("idempotency-key", "vm-once")
            .json(&json!({"name": "once", "image": "alpine-3.20"}))
            .send()
    };
    let first = accepted_task(send().await.unwrap()).await;
    let again = send().await.unwrap();
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(accepted_task(again).await, first);
    s.finished_task(&first).await;
    let r = s
        .admin(Method::GET, "/api/v2/instances")
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(r, 200).await["data"].as_array().unwrap().len(), 1);
    // Past its retention the key is purged (every ten minutes, in the
    // background), and the same key then starts a new task.
    let day_later = s.app().clock().now() + chrono::Duration::hours(25);
    let purged = s.app().purge_idempotency_keys(day_later).await;
    assert_eq!(purged.unwrap(), 1);
    let after = send().await.unwrap();
    assert!(after.headers().get("idempotent-replayed").is_none());
    assert_ne!(accepted_task(after).await, first);
    s.stop().await;
}

#[tokio::test]
async fn bad_input_gets_contract_errors_and_creates_nothing() {
    let s = TestServer::set_up().await;
    let create = |body: Value| {
        let s = &s;
        async move { s.admin_json(Method::POST, "/api/v2/instances", &body).await }
    };
    let r = create(json!({"name": "x", "image": "windows-95"})).await;
    let body = assert_error(r, 422, 3001).await;
    assert_eq!(body["errors"][0]["context"]["field"], "image");
    let r = create(json!({"name": "x\u{7}y", "image": "debian-12", "cpu": 0, "memoryMiB": 1_000_000_000, "diskGiB": -1})).await;
    let body = assert_error(r, 422, 3001).await;
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["context"]["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["name", "cpu", "memoryMiB", "diskGiB"]);
    let r = create(json!({"image": "debian-12"})).await;
    assert_error(r, 422, 3001).await;
    let r = create(json!({"name": "x", "image": "debian-12", "cpu": "many"})).await;
    assert_error(r, 400, 3000).await;
    let r = create(json!({"name": "x", "image": "debian-12", "cpu": 1e30})).await;
    assert_error(r, 400, 3000).await;
    let r = create(json!({"name": "x", "image": "debian-12", "datacenter": uuid::Uuid::now_v7()}))
        .await;
    assert_error(r, 422, 3001).await;
    let r = s
        .admin(Method::GET, "/api/v2/instances")
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(r, 200).await["data"], json!([]));
    let r = s.admin(Method::GET, "/api/v2/tasks").send().await.unwrap();
    assert_eq!(json_of(r, 200).await["data"], json!([]));

    let r = s
        .admin(Method::GET, "/api/v2/tasks/not-a-uuid")
        .send()
        .await
        .unwrap();
    assert_error(r, 404, 2000).await;
    let r = s
        .admin(Method::GET, "/api/v2/instances?state=Sleeping")
        .send()
        .await
        .unwrap();
    assert_error(r, 422, 3001).await;
    let r = s
        .admin(Method::GET, "/api/v2/tasks?status=DONE")
        .send()
        .await
        .unwrap();
    assert_error(r, 422, 3001).await;
    let id = s.create_instance(&s.root_org().await, "real").await;
    let r = s.admin(Method::GET, "/api/v2/tasks").send().await.unwrap();
    let task = json_of(r, 200).await["data"][0]["taskId"]
        .as_str()
        .unwrap()
        .to_owned();
    for wait in ["61", "-1", "soon"] {
        let r = s
            .admin(Method::GET, &format!("/api/v2/tasks/{task}?wait={wait}"))
            .send()
            .await
            .unwrap();
        assert!([400, 422].contains(&r.status().as_u16()), "wait={wait}");
    }
    let r = s
        .admin_json(
            Method::PATCH,
            &format!("/api/v2/instances/{id}"),
            &json!({"state": "Stopped"}),
        )
        .await;
    assert_error(r, 422, 3001).await;
    let r = s
        .admin_json(
            Method::PATCH,
            &format!("/api/v2/instances/{id}"),
            &json!({"name": ""}),
        )
        .await;
    assert_error(r, 422, 3001).await;
    s.stop().await;
}

/// An organization moves under another only if its instances fit in the
/// quota of every organization they then come under.
#[tokio::test]
async fn moving_an_organization_keeps_every_quota_above_it() {
    let s = TestServer::set_up().await;
    let full = s.create_org("Full", None).await;
    let mover = s.create_org("Mover", None).await;
    let r = s
        .admin_json(
            Method::PUT,
            &format!("/api/v2/organizations/{full}/quota"),
            &json!({"instances": 1}),
        )
        .await;
    json_of(r, 200).await;
    s.create_instance(&full, "f1").await;
    s.create_instance(&mover, "m1").await;

    let r = s
        .admin_json(
            Method::PATCH,
            &format!("/api/v2/organizations/{mover}"),
            &json!({"parentId": full}),
        )
        .await;
    let body = assert_error(r, 400, 3004).await;
    assert_eq!(body["errors"][0]["context"]["quota"], "instances");
    let r = s
        .admin(Method::GET, &format!("/api/v2/organizations/{mover}"))
        .send()
        .await
        .unwrap();
    assert_ne!(
        json_of(r, 200).await["data"]["parentId"],
        json!(full),
        "refused: not moved"
    );

    let r = s
        .admin_json(
            Method::PUT,
            &format!("/api/v2/organizations/{full}/quota"),
            &json!({"instances": 2}),
        )
        .await;
    json_of(r, 200).await;
    let r = s
        .admin_json(
            Method::PATCH,
            &format!("/api/v2/organizations/{mover}"),
            &json!({"parentId": full}),
        )
        .await;
    assert_eq!(json_of(r, 200).await["data"]["parentId"], json!(full));
    let r = s
        .admin(Method::GET, &format!("/api/v2/organizations/{full}/quota"))
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(r, 200).await["data"]["usage"]["instances"], 2);
    s.stop().await;
}
