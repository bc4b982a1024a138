//! Every task kind held to its contract, in the manner of omicron's saga
//! tests: for every operation, a failure injected at each step unwinds the
//! steps before it and leaves the resource in its defined state, every
//! step run twice has the effect of running once, and a node that dies
//! between any two steps leaves a task that resumes and ends as it would
//! have. The steps come from the
//! kind itself, so a step added is a step tested.

use crate::support::*;
use nephele_api_types as api;
use nephele_app::instances::{InstanceTask, InstanceTasks, Operation};
use nephele_common::ids::InstanceId;
use nephele_drivers::Power;
use nephele_tasks::{Faults, TaskKind};

/// Each instance operation: its name, the state it starts from (`None`:
/// no instance yet) and the state it ends in (`None`: no instance left).
const OPERATIONS: [(InstanceTask, &str, Option<&str>, Option<&str>); 5] = [
    (InstanceTask::Create, "create", None, Some("Running")),
    (
        InstanceTask::Operate(Operation::Start),
        "start",
        Some("Stopped"),
        Some("Running"),
    ),
    (
        InstanceTask::Operate(Operation::Stop),
        "stop",
        Some("Running"),
        Some("Stopped"),
    ),
    (
        InstanceTask::Operate(Operation::Reboot),
        "reboot",
        Some("Running"),
        Some("Running"),
    ),
    (
        InstanceTask::Operate(Operation::Delete),
        "delete",
        Some("Running"),
        None,
    ),
];

/// An instance in `state`, ready for an operation; its id.
async fn instance_in(s: &TestServer, org: &str, name: &str, state: &str) -> String {
    let id = s.create_instance(org, name).await;
    if state == "Stopped" {
        let t = operate(s, org, &id, "stop").await;
        assert_eq!(s.ended_task(&t).await.task_status, "SUCCESS");
    }
    id
}

/// Starts operation `op` (the instance's creation: `id` is ignored);
/// the task id.
async fn operate(s: &TestServer, org: &str, id: &str, op: &str) -> String {
    let client = s.admin_client();
    let accepted = match op {
        "create" => return s.start_instance_creation(org, "made", "debian-12").await,
        "delete" => client.delete_instance(id).await,
        _ => client.instance_action(id, op).await,
    };
    accepted
        .expect("the operation accepted")
        .task_id
        .to_string()
}

/// Puts an instance in the state `op` starts from (`from`), sets a
/// fault, runs `op` to its end and clears the fault; the task as it ended.
async fn run_with(
    s: &TestServer,
    org: &str,
    name: &str,
    (op, from): (&str, Option<&str>),
    fault: impl FnOnce(&Faults),
) -> api::Task {
    let id = match from {
        Some(state) => instance_in(s, org, name, state).await,
        None => String::new(),
    };
    let faults = s.app().engine().unwrap().faults();
    fault(faults);
    let t = operate(s, org, &id, op).await;
    let ended = s.ended_task(&t).await;
    faults.clear();
    ended
}

/// The state of the task's instance (`None`: no record), once checked
/// against its machine: the two must tell the same story.
async fn settled(s: &TestServer, name: &str, ended: &api::Task) -> Option<String> {
    let (state, machine) = observed(s, &ended.resource_id).await;
    assert!(
        consistent(state.as_deref(), machine),
        "{name}: recorded {state:?}, machine {machine:?}"
    );
    state
}

/// The instance's recorded state (`None`: no record) and its machine's.
async fn observed(s: &TestServer, id: &str) -> (Option<String>, Option<Power>) {
    let state = match s.admin_client().instance(id).await {
        Ok(instance) => Some(instance.state),
        Err(e) if e.status() == Some(404) => None,
        Err(e) => panic!("{id}: {e}"),
    };
    let machine = s
        .app()
        .driver()
        .status(id.parse::<InstanceId>().unwrap())
        .await
        .unwrap();
    (state, machine)
}

/// The record and the machine tell the same story.
fn consistent(state: Option<&str>, machine: Option<Power>) -> bool {
    matches!(
        (state, machine),
        (None, None)
            | (Some("Running"), Some(Power::Running))
            | (Some("Stopped"), Some(Power::Stopped))
            | (Some("Error"), _)
    )
}

#[tokio::test]
async fn a_failure_at_any_step_unwinds_to_the_defined_state() {
    let s = TestServer::set_up().await;
    let org = s.root_org().await;
    for (task, op, from, _) in OPERATIONS {
        for step in 0..InstanceTasks::steps(task).len() {
            let name = format!("{op}-{step}");
            let ended = run_with(&s, &org, &name, (op, from), |f| f.fail_step(op, step)).await;
            assert_eq!(ended.task_status, "FAILED", "{name}: {ended:?}");
            assert!(
                ended
                    .error
                    .as_ref()
                    .unwrap()
                    .message
                    .contains("Injected failure"),
                "{name}: {ended:?}"
            );
            let state = settled(&s, &name, &ended).await;
            // Back where it was, or marked broken when it cannot be.
            assert!(
                state.as_deref() == from || state.as_deref() == Some("Error"),
                "{name}: {state:?}, was {from:?}"
            );
            // The failed step and every one before it were undone.
            let log = s.admin_client().task(ended.task_id, None).await.unwrap();
            let undone = log
                .steps
                .as_ref()
                .map_or(0, |s| s.iter().filter(|e| e.action == "undo").count());
            assert_eq!(undone, step + 1, "{name}: {log:?}");
        }
    }
    s.stop().await;
}

#[tokio::test]
async fn every_step_run_twice_has_the_effect_of_once() {
    let s = TestServer::set_up().await;
    let org = s.root_org().await;
    let faults = s.app().engine().unwrap().faults();
    for (task, op, from, to) in OPERATIONS {
        let before = faults.repeated();
        let ended = run_with(&s, &org, op, (op, from), Faults::repeat_steps).await;
        assert_eq!(ended.task_status, "SUCCESS", "{op}: {ended:?}");
        let steps = InstanceTasks::steps(task).len();
        assert_eq!(faults.repeated() - before, steps, "{op}: every step twice");
        assert_eq!(settled(&s, op, &ended).await.as_deref(), to, "{op}");
    }
    s.stop().await;
}

#[tokio::test]
async fn a_crash_between_any_two_steps_recovers() {
    let s = TestServer::set_up().await;
    let org = s.root_org().await;
    let faults = s.app().engine().unwrap().faults();
    for (task, op, from, to) in OPERATIONS {
        // After the last step there is nothing left to resume.
        for step in 0..InstanceTasks::steps(task).len() - 1 {
            let name = format!("{op}-{step}");
            let before = faults.halted();
            let ended = run_with(&s, &org, &name, (op, from), |f| f.halt_after(op, step)).await;
            assert_eq!(ended.task_status, "SUCCESS", "{name}: {ended:?}");
            assert_eq!(faults.halted(), before + 1, "{name}: the node did not halt");
            assert_eq!(settled(&s, &name, &ended).await.as_deref(), to, "{name}");
        }
    }
    s.stop().await;
}
