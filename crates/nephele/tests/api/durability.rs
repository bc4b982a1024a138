//! Durability of tasks, proved on the real binary: `kill -9` with
//! hundreds of tasks in flight and a restart; three nodes on one
//! PostgreSQL database with one of them killed mid-batch. Every task ends,
//! none is lost, no step takes effect twice.

use crate::binary::{set_up_with, Process};
use crate::support::*;
use reqwest::Client;
use serde_json::{json, Value};
use sqlx::Row;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

pub(crate) const TOKEN: &str = "durability-setup-token-0123456789";

pub(crate) fn serve(data_dir: &str, db: &str, extra: &[&str]) -> Process {
    let mut args = vec![
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        data_dir,
        "--database-url",
        db,
        "--setup-token",
        TOKEN,
        "--secret-key",
        SECRET_KEY,
        "--task-lease",
        "2s",
    ];
    args.extend_from_slice(extra);
    Process::spawn(&args, &[])
}

/// Asks for instance `i` with its own idempotency key; the task id, or
/// `None` when no answer came (the server died) or it is still in
/// progress elsewhere.
async fn create(http: &Client, url: &str, i: usize) -> Option<String> {
    let r = http
        .post(format!("{url}/api/v2/instances"))
        .basic_auth(ADMIN_LOGIN, Some(ADMIN_PASSWORD))
        .header("idempotency-key", format!("vm-{i}"))
        .json(&json!({"name": format!("vm-{i}"), "image": "debian-12", "cpu": 1, "memoryMiB": 128}))
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .ok()?;
    if r.status() != 202 {
        return None;
    }
    let body: Value = r.json().await.ok()?;
    body["taskId"].as_str().map(str::to_owned)
}

/// Sends creations 0..n, 16 at a time; each answer goes to `answers`.
fn fire(
    http: Client,
    url: String,
    n: usize,
) -> tokio::sync::mpsc::UnboundedReceiver<(usize, Option<String>)> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(16));
    tokio::spawn(async move {
        for i in 0..n {
            let permit = gate.clone().acquire_owned().await.unwrap();
            let (http, url, tx) = (http.clone(), url.clone(), tx.clone());
            tokio::spawn(async move {
                let answer = create(&http, &url, i).await;
                let _ = tx.send((i, answer));
                drop(permit);
            });
        }
    });
    rx
}

/// Waits until no task is unfinished; panics after `limit`.
async fn until_all_finished(db: &sqlx::AnyPool, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let open: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM tasks WHERE status NOT IN ('SUCCESS', 'FAILED')",
        )
        .fetch_one(db)
        .await
        .unwrap();
        if open == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "{open} tasks never finished");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every task ended; every instance is at rest; every machine was made
/// and booted exactly once; no step was recorded twice.
async fn assert_nothing_lost_or_doubled(db: &sqlx::AnyPool) -> usize {
    let states: Vec<String> = sqlx::query_scalar("SELECT state FROM instances")
        .fetch_all(db)
        .await
        .unwrap();
    for s in &states {
        assert!(
            ["Running", "Stopped", "Error"].contains(&s.as_str()),
            "instance left {s}"
        );
    }
    let running = states.iter().filter(|s| *s == "Running").count();
    let machines: Vec<(String, i64)> = sqlx::query("SELECT id, boots FROM sim_machines")
        .fetch_all(db)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(machines.len(), states.len(), "one machine per instance");
    for (id, boots) in &machines {
        assert_eq!(*boots, 1, "machine {id} booted {boots} times");
    }
    let doubled: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT task_id, name FROM task_steps \
         WHERE action = 'do' AND outcome = 'done' GROUP BY task_id, name HAVING count(*) > 1) d",
    )
    .fetch_one(db)
    .await
    .unwrap();
    assert_eq!(doubled, 0, "steps recorded twice");
    let per_instance: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT resource_id FROM tasks GROUP BY resource_id \
         HAVING count(*) > 1) d",
    )
    .fetch_one(db)
    .await
    .unwrap();
    assert_eq!(per_instance, 0, "an instance created twice");
    running
}

async fn pool(url: &str) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::any::AnyPoolOptions::new()
        .max_connections(2)
        .connect(url)
        .await
        .unwrap()
}

#[tokio::test]
async fn kill_9_with_hundreds_of_tasks_in_flight_loses_nothing_and_repeats_nothing() {
    const N: usize = 300;
    let dir = tempfile::tempdir().unwrap();
    let (db_url, _pg) = test_database(dir.path()).await;
    let data = dir.path().to_str().unwrap().to_owned();
    let latency = ["--sim-latency", "100ms"];
    let mut first = serve(&data, &db_url, &latency);
    let url = first.url();
    set_up_with(&url, TOKEN).await;

    let http = Client::new();
    let mut answers = fire(http.clone(), url.clone(), N);
    let mut accepted: HashMap<usize, String> = HashMap::new();
    while accepted.len() < N / 2 {
        let (i, task) = answers.recv().await.expect("answers");
        if let Some(t) = task {
            accepted.insert(i, t);
        }
    }
    first.kill9();
    // What was answered while the server died counts too.
    while let Ok(Some((i, task))) =
        tokio::time::timeout(Duration::from_secs(5), answers.recv()).await
    {
        if let Some(t) = task {
            accepted.insert(i, t);
        }
    }
    let db = pool(&db_url).await;
    let unfinished: i64 =
        sqlx::query_scalar("SELECT count(*) FROM tasks WHERE status NOT IN ('SUCCESS', 'FAILED')")
            .fetch_one(&db)
            .await
            .unwrap();
    assert!(unfinished > 0, "the kill should catch tasks in flight");

    let mut second = serve(&data, &db_url, &latency);
    let url = second.url();
    // Every key again: an accepted one returns its task; one never
    // answered is retried until it is (its claim dies with the old node's
    // lease).
    let deadline = Instant::now() + Duration::from_secs(60);
    for i in 0..N {
        loop {
            if let Some(task) = create(&http, &url, i).await {
                if let Some(first) = accepted.get(&i) {
                    assert_eq!(&task, first, "key {i} must replay its task");
                }
                break;
            }
            assert!(Instant::now() < deadline, "key {i} never answered");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    until_all_finished(&db, Duration::from_secs(90)).await;
    let running = assert_nothing_lost_or_doubled(&db).await;
    assert_eq!(running, N, "every instance made exactly once and running");
    let failed: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks WHERE status = 'FAILED'")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(failed, 0);
    db.close().await;
    second.terminate();
}

#[tokio::test]
async fn three_nodes_share_the_work_and_take_over_a_killed_ones_tasks() {
    let Some(admin) = postgres_admin_url() else {
        println!("skipped: several nodes need PostgreSQL (NEPHELE_TEST_DATABASE_URL)");
        return;
    };
    const N: usize = 300;
    let pg = PgDatabase::create(&admin).await;
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let args = ["--sim-latency", "100ms", "--task-workers", "16"];
    let mut nodes: Vec<Process> = dirs
        .iter()
        .map(|d| serve(d.path().to_str().unwrap(), &pg.url, &args))
        .collect();
    let urls: Vec<String> = nodes.iter_mut().map(|p| p.url()).collect();
    let ids: Vec<String> = nodes
        .iter_mut()
        .map(|p| {
            let line = p.wait_for("task engine started");
            let re =
                regex::Regex::new(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
                    .unwrap();
            re.find(&line).expect("node id").as_str().to_owned()
        })
        .collect();
    set_up_with(&urls[0], TOKEN).await;
    let http = Client::new();
    let mut answers = fire(http.clone(), urls[0].clone(), N);
    let mut accepted = HashSet::new();
    while accepted.len() < N {
        let (i, task) = answers.recv().await.expect("answers");
        assert!(task.is_some(), "creation {i} refused");
        accepted.insert(task);
    }
    let db = pool(&pg.url).await;
    // Kill the second node once it holds tasks. What it held is read after
    // the kill: until then it may still finish some of them itself.
    let held_by_second = || {
        sqlx::query_scalar::<_, String>(
            "SELECT id FROM tasks WHERE owner = $1 AND status = 'RUNNING'",
        )
        .bind(&ids[1])
        .fetch_all(&db)
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while held_by_second().await.unwrap().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the second node never claimed a task"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    nodes.remove(1).kill9();
    // Its lease (2 s) outlives this read, so nothing is taken over yet.
    let held = held_by_second().await.unwrap();
    assert!(!held.is_empty(), "the second node died holding tasks");
    until_all_finished(&db, Duration::from_secs(90)).await;
    let running = assert_nothing_lost_or_doubled(&db).await;
    assert_eq!(running, N, "zero lost");
    for task in &held {
        let (status, owner): (String, Option<String>) =
            sqlx::query("SELECT status, owner FROM tasks WHERE id = $1")
                .bind(task)
                .fetch_one(&db)
                .await
                .map(|r| (r.get(0), r.get(1)))
                .unwrap();
        assert_eq!(status, "SUCCESS", "task {task} of the killed node");
        assert_ne!(owner.as_deref(), Some(ids[1].as_str()), "taken over");
    }
    // Every live node did some of the work.
    for id in [&ids[0], &ids[2]] {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks WHERE owner = $1")
            .bind(id)
            .fetch_one(&db)
            .await
            .unwrap();
        assert!(n > 0, "node {id} ran nothing");
    }
    db.close().await;
    for n in nodes {
        n.terminate();
    }
}

/// A node whose lease ran out (a stall longer than the lease: a long write
/// lock, a paused VM) registers again and goes on working. It used to try
/// to insert its row a second time, fail on the key, and never claim a task
/// again.
#[tokio::test]
async fn a_node_whose_lease_ran_out_registers_again_and_works_on() {
    let s = TestServer::start_with(|c| c.task_lease = Duration::from_secs(1)).await;
    s.post("/occm/setup/init", &setup_body()).await;
    let org = s.root_org().await;
    s.create_instance(&org, "before").await;
    let db = pool(&s.database_url).await;
    sqlx::query("UPDATE nodes SET lease_until = 0")
        .execute(&db)
        .await
        .unwrap();
    // The next heartbeat (a third of the lease) finds the lease gone.
    tokio::time::sleep(Duration::from_millis(800)).await;
    s.create_instance(&org, "after").await;
    let lease: i64 = sqlx::query_scalar("SELECT max(lease_until) FROM nodes")
        .fetch_one(&db)
        .await
        .unwrap();
    assert!(lease > 0, "registered again");
    db.close().await;
    s.stop().await;
}

/// Frames in SQLite's write-ahead log since it last started afresh
/// (`mxFrame` of the wal-index header at the start of the `-shm` file,
/// in native byte order), read without touching the database.
fn wal_frames(db: &str) -> u32 {
    let shm = std::fs::read(format!("{db}-shm")).unwrap_or_default();
    shm.get(16..20)
        .map(|b| u32::from_ne_bytes(b.try_into().unwrap()))
        .unwrap_or(0)
}

/// Under a steady stream of writes, with readers always present (here two
/// of the test's own, overlapping), the server's checkpoints must still
/// start the log afresh once it is long. They once never did: the log grew
/// by 25 MB a second, and every page lookup slowed with it.
#[tokio::test]
async fn the_write_ahead_log_starts_afresh_under_steady_load() {
    let s = TestServer::set_up().await;
    let Some(db) = s
        .database_url
        .strip_prefix("sqlite://")
        .and_then(|u| u.split('?').next())
        .map(str::to_owned)
    else {
        return; // PostgreSQL has no such log to watch.
    };
    let org = s.root_org().await;
    let until = Instant::now() + Duration::from_millis(4500);
    let mut work = tokio::task::JoinSet::new();
    for n in 0..2u64 {
        let url = format!("sqlite://{db}");
        work.spawn(async move {
            use sqlx::Connection;
            let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
            tokio::time::sleep(Duration::from_millis(40 * n)).await;
            while Instant::now() < until {
                let mut tx = c.begin().await.unwrap();
                sqlx::query("SELECT count(*) FROM instances")
                    .fetch_one(&mut *tx)
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(80)).await;
                tx.commit().await.unwrap();
            }
        });
    }
    let writers = (0..4)
        .map(|w| {
            let s = &s;
            let org = &org;
            async move {
                let mut i = 0;
                while Instant::now() < until {
                    s.start_instance_creation(org, &format!("wal-{w}-{i}"), "debian-12")
                        .await;
                    i += 1;
                }
            }
        })
        .collect::<Vec<_>>();
    let watch = async {
        let (mut peak, mut restarts) = (0, 0);
        while Instant::now() < until {
            let frames = wal_frames(&db);
            if frames < peak {
                restarts += 1;
            }
            peak = frames;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        restarts
    };
    let (_, restarts) = tokio::join!(futures::future::join_all(writers), watch);
    while work.join_next().await.is_some() {}
    assert!(
        restarts >= 1,
        "the log never started afresh in 4.5 s of writes"
    );
}

/// A task whose last step was recorded apart from its end, as versions
/// before the last step went with the end left one that was interrupted
/// between the two: claimed again, it runs that step once more (steps
/// are idempotent) and ends SUCCESS with the instance as its result.
#[tokio::test]
async fn a_task_past_its_last_step_ends_with_its_result() {
    let s = TestServer::start_with(|c| c.task_lease = Duration::from_secs(1)).await;
    s.post("/occm/setup/init", &setup_body()).await;
    let org = s.root_org().await;
    let task = s
        .start_instance_creation(&org, "resumed", "debian-12")
        .await;
    let t = s.ended_task(&task).await;
    assert_eq!(t.task_status, "SUCCESS", "{t:?}");
    let instance = t.resource_id;
    let db = pool(&s.database_url).await;
    // All three steps done and recorded, the end not yet written.
    sqlx::query(
        "UPDATE tasks SET status = 'PENDING', owner = NULL, step = 3, progress = 99, \
         result = NULL, completed_at = NULL WHERE id = $1",
    )
    .bind(&task)
    .execute(&db)
    .await
    .unwrap();
    let t = s.ended_task(&task).await;
    assert_eq!(t.task_status, "SUCCESS", "{t:?}");
    let result = t.result.as_ref().expect("the instance as it ended");
    assert_eq!(result["id"], instance.as_str(), "{t:?}");
    assert_eq!(result["state"], "Running", "{t:?}");
    let step: i64 = sqlx::query_scalar("SELECT step FROM tasks WHERE id = $1")
        .bind(&task)
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(step, 3);
    db.close().await;
    s.stop().await;
}
