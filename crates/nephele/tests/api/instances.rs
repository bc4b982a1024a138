//! Instances and tasks through the API: the lifecycle, 409s, failures and
//! their undo, quotas, cancellation, long-polls and bad input.

use crate::support::*;
use nephele_api_types as api;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

/// A resize (or rename) of an instance.
fn resize(cpu: Option<i64>, memory_mib: Option<i64>) -> api::InstanceUpdate {
    api::InstanceUpdate {
        cpu,
        memory_mib,
        ..Default::default()
    }
}

fn rename(name: &str) -> api::InstanceUpdate {
    api::InstanceUpdate {
        name: Some(name.to_owned()),
        ..Default::default()
    }
}

/// An instance of `image` (1 vCPU, 256 MiB unless `cpu` says otherwise).
fn instance_body(name: &str, image: &str, cpu: Option<i64>) -> api::InstanceCreate {
    api::InstanceCreate {
        name: Some(name.to_owned()),
        image: Some(image.to_owned()),
        cpu,
        ..Default::default()
    }
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
    let t = s.ended_task(&task).await;
    assert_eq!(t.task_status, "SUCCESS", "{t:?}");
    assert_eq!(t.operation, "create");
    assert_eq!(t.resource_type, "instances");
    assert_eq!(t.agent_id.as_deref(), Some("agent-7"));
    assert_eq!(t.progress, 100);
    assert_eq!(t.organization_id.to_string(), root);
    assert!(t.started_at.is_some() && t.completed_at.is_some());
    assert_eq!(t.result.as_ref().unwrap()["state"], "Running");
    assert!(t.error.is_none());
    assert_eq!(
        step_names(&t),
        ["create machine", "start machine", "mark running"]
    );
    let id = t.resource_id.clone();

    let client = s.admin_client();
    let vm = client.instance(&id).await.unwrap();
    assert_eq!(vm.state, "Running");
    assert_eq!(vm.name, "web-1");
    assert_eq!((vm.cpu, vm.memory_mib, vm.disk_gib), (2, 2048, 10));
    assert_eq!(vm.image, "ubuntu-24.04");
    assert_eq!(vm.organization_id.to_string(), root);
    // The ETag is the version.
    let r = s
        .admin(Method::GET, &format!("/api/v2/instances/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["etag"], format!("\"{}\"", vm.version).as_str());

    // Lists filter by state and name.
    let list = |q: &'static [(&'static str, &'static str)]| {
        let client = &client;
        async move { client.instances(q).await.unwrap().data.len() }
    };
    assert_eq!(list(&[]).await, 1);
    assert_eq!(list(&[("state", "Running")]).await, 1);
    assert_eq!(list(&[("state", "Stopped")]).await, 0);
    assert_eq!(list(&[("name", "web-1")]).await, 1);
    assert_eq!(list(&[("name", "web-2")]).await, 0);

    // Resizing needs Stopped.
    let refused = client.update_instance(&id, &resize(Some(4), None)).await;
    let errors = assert_refused(refused, 409, 2012);
    assert_eq!(errors[0].context["currentState"], "Running");
    assert_eq!(errors[0].context["expectedStates"], json!(["Stopped"]));
    // Renaming does not.
    let renamed = client.update_instance(&id, &rename("web-one")).await;
    assert_eq!(renamed.unwrap().name, "web-one");

    // Start needs Stopped.
    let errors = assert_refused(client.instance_action(&id, "start").await, 409, 2012);
    assert_eq!(errors[0].context["type"], "instances");
    assert_eq!(errors[0].context["id"], id.as_str());
    assert_eq!(errors[0].context["expectedStates"], json!(["Stopped"]));

    let t = s.ended(client.instance_action(&id, "reboot").await).await;
    assert_eq!(t.task_status, "SUCCESS", "{t:?}");
    assert_eq!(t.result.as_ref().unwrap()["state"], "Running");

    let t = s.ended(client.instance_action(&id, "stop").await).await;
    assert_eq!(t.task_status, "SUCCESS", "{t:?}");
    assert_eq!(client.instance(&id).await.unwrap().state, "Stopped");
    let errors = assert_refused(client.instance_action(&id, "stop").await, 409, 2012);
    assert_eq!(errors[0].context["currentState"], "Stopped");
    assert_eq!(errors[0].context["expectedStates"], json!(["Running"]));

    let vm = client
        .update_instance(&id, &resize(Some(4), Some(4096)))
        .await
        .unwrap();
    assert_eq!((vm.cpu, vm.memory_mib), (4, 4096));

    let t = s.ended(client.instance_action(&id, "start").await).await;
    assert_eq!(t.result.as_ref().unwrap()["cpu"], 4);

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
    let t = s.ended_task(&accepted_task(r).await).await;
    assert_eq!(t.task_status, "SUCCESS", "{t:?}");
    assert!(t.result.is_none());
    assert_refused(client.instance(&id).await, 404, 2000);

    // Every task of the instance, newest first, filtered.
    let tasks = client.tasks(&[("resourceId", &id)]).await.unwrap().data;
    let ops: Vec<&str> = tasks.iter().map(|t| t.operation.as_str()).collect();
    assert_eq!(ops, ["delete", "start", "stop", "reboot", "create"]);
    let failed = client.tasks(&[("status", "FAILED")]).await.unwrap();
    assert!(failed.data.is_empty());

    // Metrics count the tasks; the audit log has one event per operation.
    let metrics = s.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("nephele_tasks_finished_total{operation=\"create\",status=\"SUCCESS\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("nephele_task_duration_seconds_bucket"));
    let events = s.audit_events(&[("action", "instances.create")]).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].agent_id.as_deref(), Some("agent-7"));
    s.stop().await;
}

#[tokio::test]
async fn one_operation_at_a_time_and_the_running_task_is_named() {
    let s = TestServer::start_with(|c| c.sim_latency = Duration::from_millis(400)).await;
    s.post("/occm/setup/init", &setup_body()).await;
    let root = s.root_org().await;
    let task = s.start_instance_creation(&root, "slow", "debian-12").await;
    let client = s.admin_client();
    let id = client.task(&task, None).await.unwrap().resource_id;
    assert_eq!(client.instance(&id).await.unwrap().state, "Provisioning");
    for op in ["stop", "start", "reboot"] {
        let errors = assert_refused(client.instance_action(&id, op).await, 409, 2013);
        assert_eq!(errors[0].context["taskId"], task.as_str(), "{op}");
    }
    assert_refused(client.delete_instance(&id).await, 409, 2013);
    let resized = client.update_instance(&id, &resize(Some(2), None)).await;
    assert_refused(resized, 409, 2013);
    // A long-poll that ends before the task does answers PENDING.
    let t = client.task(&task, Some(0)).await.unwrap();
    assert_eq!(t.task_status, "PENDING");
    let t = s.ended_task(&task).await;
    assert_eq!(t.task_status, "SUCCESS", "{t:?}");
    // Two operations raced: exactly one is accepted.
    let (a, b) = tokio::join!(
        client.instance_action(&id, "stop"),
        client.instance_action(&id, "reboot")
    );
    let status = |r: Result<api::TaskAccepted, nephele_client::Error>| match r {
        Ok(_) => 202,
        Err(e) => e.status().unwrap(),
    };
    let mut statuses = [status(a), status(b)];
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
    let client = s.admin_client();
    let mut seen = Vec::new();
    loop {
        let t = client.task(&task, None).await.unwrap();
        if t.task_status != "PENDING" {
            assert_eq!(t.task_status, "SUCCESS", "{t:?}");
            break;
        }
        let steps: Vec<String> = step_names(&t).into_iter().map(str::to_owned).collect();
        let progress = t.progress;
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
    let t = s.ended_task(&task).await;
    assert_eq!(t.task_status, "FAILED", "{t:?}");
    let error = t.error.as_ref().unwrap();
    assert_eq!(error.code, 5003);
    assert!(error.message.contains("start"), "{t:?}");
    assert!(t.result.is_none());
    let log: Vec<String> = t
        .steps
        .as_ref()
        .unwrap()
        .iter()
        .map(|s| format!("{} {} {}", s.action, s.name, s.outcome))
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
    let client = s.admin_client();
    assert_refused(client.instance(&t.resource_id).await, 404, 2000);

    // When the undo fails too, the instance is left in Error.
    let task = s
        .start_instance_creation(&root, "broken", "fail-on-start+fail-on-delete")
        .await;
    let t = s.ended_task(&task).await;
    assert_eq!(t.task_status, "FAILED", "{t:?}");
    assert_eq!(
        t.error.as_ref().unwrap().context["undoFailed"],
        true,
        "{t:?}"
    );
    let broken = client.instance(&t.resource_id).await.unwrap();
    assert_eq!(broken.state, "Error");

    // A failed stop leaves it running.
    let task = s
        .start_instance_creation(&root, "sticky", "fail-on-stop")
        .await;
    let id = s.ended_task(&task).await.resource_id;
    let t = s.ended(client.instance_action(&id, "stop").await).await;
    assert_eq!(t.task_status, "FAILED", "{t:?}");
    assert_eq!(client.instance(&id).await.unwrap().state, "Running");

    let failed = client.tasks(&[("status", "FAILED")]).await.unwrap();
    assert_eq!(failed.data.len(), 3);
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
    let client = s.admin_client();
    let reseller_admin = s.client_as("reseller-admin");
    let quota = |instances, vcpus, memory_mib| api::QuotaWrite {
        instances,
        vcpus,
        memory_mib,
    };
    let q = client
        .set_quota(&reseller, &quota(Some(2), Some(3), Some(4096)))
        .await
        .unwrap();
    assert_eq!((q.instances, q.vcpus), (Some(2), Some(3)));
    let raised = reseller_admin
        .set_quota(&reseller, &quota(Some(100), None, None))
        .await;
    assert_refused(raised, 403, 1003);
    // … but sets its customer's, never above its own.
    let above = reseller_admin
        .set_quota(&customer, &quota(Some(5), Some(1), None))
        .await;
    let errors = assert_refused(above, 422, 3001);
    assert_eq!(errors[0].context["field"], "instances");
    let q = reseller_admin
        .set_quota(&customer, &quota(Some(1), Some(1), None))
        .await
        .unwrap();
    assert_eq!(q.memory_mib, None, "a missing limit is none: {q:?}");
    let root = s.root_org().await;
    let own = client.set_quota(&root, &quota(None, None, None)).await;
    assert_refused(own, 403, 1003);

    // Within the quota, then over it.
    let r1 = s.create_instance(&reseller, "r1").await;
    let over = client
        .create_instance(Some(&reseller), &instance_body("r2", "debian-12", Some(4)))
        .await;
    let errors = assert_refused(over, 400, 3004);
    let ctx = &errors[0].context;
    assert_eq!(
        (
            ctx["quota"].clone(),
            ctx["limit"].clone(),
            ctx["requested"].clone()
        ),
        (json!("vcpus"), json!(3), json!(4))
    );
    let r2 = s.create_instance(&reseller, "r2").await;
    let over = client
        .create_instance(Some(&reseller), &instance_body("r3", "debian-12", None))
        .await;
    let errors = assert_refused(over, 400, 3004);
    assert_eq!(errors[0].context["quota"], "instances");
    let usage = client.quota(&reseller).await.unwrap().usage;
    assert_eq!(
        (usage.instances, usage.vcpus, usage.memory_mib),
        (2, 2, 512)
    );

    // Resizing counts too; an organization holding instances is not deleted.
    s.ended(client.instance_action(&r1, "stop").await).await;
    let resized = client.update_instance(&r1, &resize(Some(3), None)).await;
    assert_refused(resized, 400, 3004);
    // The customer's instances count in the reseller's quota.
    let over = client
        .create_instance(Some(&customer), &instance_body("c1", "debian-12", None))
        .await;
    let errors = assert_refused(over, 400, 3004);
    assert_eq!(
        Value::Object(errors[0].context.clone()),
        json!({"quota": "instances", "limitedBy": "ancestor", "available": 0, "requested": 1})
    );
    s.ended(client.delete_instance(&r2).await).await;
    s.create_instance(&customer, "c1").await;
    let usage = client.quota(&reseller).await.unwrap().usage;
    assert_eq!(usage.instances, 2);
    let errors = assert_refused(client.delete_organization(&customer).await, 409, 2012);
    assert_eq!(errors[0].context["instances"], 1);
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
    let client = s.admin_client();
    let t = client.cancel_task(&second).await.unwrap();
    assert_eq!(t.task_status, "FAILED");
    assert_eq!(
        t.error.as_ref().unwrap().context["currentState"],
        "CANCELLED"
    );
    assert_refused(client.instance(&t.resource_id).await, 404, 2000);

    let errors = assert_refused(client.cancel_task(&first).await, 409, 2012);
    assert_eq!(errors[0].context["expectedStates"], json!(["PENDING"]));
    let t = s.ended_task(&first).await;
    assert_eq!(t.task_status, "SUCCESS");
    let errors = assert_refused(client.cancel_task(&first).await, 409, 2012);
    assert_eq!(errors[0].context["currentState"], "SUCCESS");
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
    let client = s.admin_client();
    let mut started = Vec::new();
    for task in &tasks {
        let t = client.task(task, None).await.unwrap();
        assert_eq!(t.task_status, "PENDING", "{t:?}");
        started.push(t.started_at.is_some());
    }
    assert_eq!(started, [true, true, false, false, false]);
    for task in &tasks {
        let t = s.ended_task(task).await;
        assert_eq!(t.task_status, "SUCCESS", "{t:?}");
        let steps: Vec<(&str, &str)> = t
            .steps
            .as_ref()
            .unwrap()
            .iter()
            .map(|s| (s.name.as_str(), s.action.as_str()))
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
    s.ended_task(&first).await;
    let instances = s.admin_client().instances(&[]).await.unwrap();
    assert_eq!(instances.data.len(), 1);
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
    let client = s.admin_client();
    assert!(client.instances(&[]).await.unwrap().data.is_empty());
    assert!(client.tasks(&[]).await.unwrap().data.is_empty());

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
    let task = client.tasks(&[]).await.unwrap().data[0].task_id;
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
    let client = s.admin_client();
    let limit = |instances| api::QuotaWrite {
        instances: Some(instances),
        ..Default::default()
    };
    client.set_quota(&full, &limit(1)).await.unwrap();
    s.create_instance(&full, "f1").await;
    s.create_instance(&mover, "m1").await;

    let under_full = api::OrganizationUpdate {
        parent_id: Some(full.parse().unwrap()),
        ..Default::default()
    };
    let moved = client.patch_organization(&mover, &under_full).await;
    let errors = assert_refused(moved, 400, 3004);
    assert_eq!(errors[0].context["quota"], "instances");
    let org = client.organization(&mover).await.unwrap();
    assert_ne!(
        org.parent_id.map(|p| p.to_string()),
        Some(full.clone()),
        "refused: not moved"
    );

    client.set_quota(&full, &limit(2)).await.unwrap();
    let org = client.patch_organization(&mover, &under_full).await;
    assert_eq!(
        org.unwrap().parent_id.map(|p| p.to_string()),
        Some(full.clone())
    );
    let usage = client.quota(&full).await.unwrap().usage;
    assert_eq!(usage.instances, 2);
    s.stop().await;
}
