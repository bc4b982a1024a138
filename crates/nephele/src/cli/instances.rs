//! Instances and the tasks their operations run as: `--wait` follows a
//! task to its end, with a progress bar on a terminal.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use nephele_api_types as api;
use nephele_client::{describe_error, Method, Request};
use nephele_common::error::ErrorDetail;
use serde_json::{json, Value};
use uuid::Uuid;

use super::output::{Output, INSTANCE, TASK};
use super::resources::{fields, show, write};
use super::session::Session;
use super::{Exit, Failure, Global, Paging};

/// Longest single long-poll, without a progress bar to move.
const POLL: u64 = 5;
/// With a progress bar: the answer of a long poll comes at the task's end
/// only, so the bar asks again each second to show the steps as they go.
const BAR_POLL: u64 = 1;

#[derive(Debug, Subcommand)]
pub enum InstanceCommand {
    /// Create an instance (asynchronous: prints its task, or waits with --wait)
    #[command(
        after_help = "Examples:\n  nephele instance create web-1 --image ubuntu-24.04 --cpu 2 --memory-mib 2048 --wait\n  nephele instance create db-1 --image debian-12 --disk-gib 100 -q"
    )]
    Create {
        /// The instance's name
        name: String,
        /// The image to boot (`nephele image list`)
        #[arg(long)]
        image: String,
        /// vCPUs [server default: 1]
        #[arg(long)]
        cpu: Option<i64>,
        /// Memory in MiB [server default: 1024]
        #[arg(long)]
        memory_mib: Option<i64>,
        /// Disk in GiB [server default: 10]
        #[arg(long)]
        disk_gib: Option<i64>,
        /// Data center id [default: the server's own]
        #[arg(long)]
        datacenter: Option<Uuid>,
        /// Wait for the task to end; exit 8 if it fails
        #[arg(long)]
        wait: bool,
    },
    /// Instances of the organization acted in
    #[command(
        after_help = "Examples:\n  nephele instance list\n  nephele instance list --state Running -q\n  nephele instance list --name web-1 -o yaml"
    )]
    List {
        /// Running, Stopped, … (the server checks it)
        #[arg(long)]
        state: Option<String>,
        /// Only instances of this name
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        paging: Paging,
    },
    /// One instance
    #[command(
        after_help = "Examples:\n  nephele instance get 0192…\n  nephele instance get 0192… -o xml"
    )]
    Get {
        /// The instance's id
        id: Uuid,
    },
    /// Start a stopped instance
    #[command(after_help = "Examples:\n  nephele instance start 0192… --wait")]
    Start {
        /// The instance's id
        id: Uuid,
        /// Wait for the task to end; exit 8 if it fails
        #[arg(long)]
        wait: bool,
    },
    /// Stop a running instance
    #[command(after_help = "Examples:\n  nephele instance stop 0192… --wait")]
    Stop {
        /// The instance's id
        id: Uuid,
        /// Wait for the task to end; exit 8 if it fails
        #[arg(long)]
        wait: bool,
    },
    /// Reboot a running instance
    #[command(after_help = "Examples:\n  nephele instance reboot 0192… --wait")]
    Reboot {
        /// The instance's id
        id: Uuid,
        /// Wait for the task to end; exit 8 if it fails
        #[arg(long)]
        wait: bool,
    },
    /// Change a stopped instance's vCPUs or memory
    #[command(after_help = "Examples:\n  nephele instance resize 0192… --cpu 4 --memory-mib 8192")]
    Resize {
        /// The instance's id
        id: Uuid,
        /// vCPUs
        #[arg(long)]
        cpu: Option<i64>,
        /// Memory in MiB
        #[arg(long)]
        memory_mib: Option<i64>,
    },
    /// Rename an instance
    #[command(after_help = "Examples:\n  nephele instance rename 0192… web-2")]
    Rename {
        /// The instance's id
        id: Uuid,
        /// The new name
        name: String,
    },
    /// Delete an instance (asynchronous)
    #[command(after_help = "Examples:\n  nephele instance delete 0192… --wait")]
    Delete {
        /// The instance's id
        id: Uuid,
        /// Wait for the task to end; exit 8 if it fails
        #[arg(long)]
        wait: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TaskCommand {
    /// Tasks of the organization acted in, newest first
    #[command(
        after_help = "Examples:\n  nephele task list\n  nephele task list --status FAILED\n  nephele task list --resource 0192…"
    )]
    List {
        /// PENDING, SUCCESS or FAILED (the server checks it)
        #[arg(long)]
        status: Option<String>,
        /// Only tasks on this resource
        #[arg(long)]
        resource: Option<String>,
        #[command(flatten)]
        paging: Paging,
    },
    /// One task with its step log
    #[command(after_help = "Examples:\n  nephele task get 0192…")]
    Get {
        /// The task's id
        id: Uuid,
    },
    /// Wait for a task to end; exit 8 if it fails
    #[command(
        after_help = "Examples:\n  nephele task wait 0192…\n  nephele task wait 0192… --timeout 10m"
    )]
    Wait {
        /// The task's id
        id: Uuid,
        /// Give up after this long (exit 1), e.g. 30s, 10m
        #[arg(long, default_value = "1h")]
        timeout: humantime::Duration,
    },
    /// Cancel a task that has not started
    #[command(after_help = "Examples:\n  nephele task cancel 0192…")]
    Cancel {
        /// The task's id
        id: Uuid,
    },
}

pub async fn instance(
    global: &Global,
    command: InstanceCommand,
    out: Output,
) -> Result<(), Failure> {
    let mut s = Session::open(global).await?;
    let base = "/api/v2/instances";
    match command {
        InstanceCommand::Create {
            name,
            image,
            cpu,
            memory_mib,
            disk_gib,
            datacenter,
            wait,
        } => {
            let body = api::InstanceCreate {
                name: Some(name),
                image: Some(image),
                cpu,
                memory_mib,
                disk_gib,
                datacenter,
            };
            let request = Request::new(Method::POST, base).body(&body);
            accepted(&mut s, request, wait, out).await
        }
        InstanceCommand::List {
            state,
            name,
            paging,
        } => {
            let request = Request::get(base).query("state", state).query("name", name);
            let items = s.list(request, &paging).await?;
            out.list(&items, &INSTANCE)
        }
        InstanceCommand::Get { id } => show(&mut s, format!("{base}/{id}"), &INSTANCE, out).await,
        InstanceCommand::Start { id, wait } => operate(&mut s, base, id, "start", wait, out).await,
        InstanceCommand::Stop { id, wait } => operate(&mut s, base, id, "stop", wait, out).await,
        InstanceCommand::Reboot { id, wait } => {
            operate(&mut s, base, id, "reboot", wait, out).await
        }
        InstanceCommand::Resize {
            id,
            cpu,
            memory_mib,
        } => {
            if cpu.is_none() && memory_mib.is_none() {
                return Err(Failure::new(
                    Exit::Usage,
                    "nothing to change: give --cpu or --memory-mib",
                ));
            }
            let body = fields([
                ("cpu", cpu.map(|v| json!(v))),
                ("memoryMiB", memory_mib.map(|v| json!(v))),
            ]);
            write(
                &mut s,
                Method::PATCH,
                format!("{base}/{id}"),
                &body,
                &INSTANCE,
                out,
            )
            .await
        }
        InstanceCommand::Rename { id, name } => {
            let body = json!({"name": name});
            write(
                &mut s,
                Method::PATCH,
                format!("{base}/{id}"),
                &body,
                &INSTANCE,
                out,
            )
            .await
        }
        InstanceCommand::Delete { id, wait } => {
            accepted(
                &mut s,
                Request::new(Method::DELETE, format!("{base}/{id}")),
                wait,
                out,
            )
            .await
        }
    }
}

/// An asynchronous operation: prints the accepted task, or with `wait`
/// follows it and prints the resource as it ended.
/// `POST …/{id}/{verb}`: an operation on an instance, as a task.
async fn operate(
    s: &mut Session,
    base: &str,
    id: Uuid,
    verb: &str,
    wait: bool,
    out: Output,
) -> Result<(), Failure> {
    let request = Request::post(format!("{base}/{id}/{verb}"), json!({}));
    accepted(s, request, wait, out).await
}

async fn accepted(
    s: &mut Session,
    request: Request,
    wait: bool,
    out: Output,
) -> Result<(), Failure> {
    let accepted = s.send(request).await?.body;
    let Some(task_id) = accepted
        .get("taskId")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return Err(Failure::new(
            Exit::Server,
            "the server accepted the operation without a taskId",
        ));
    };
    if !wait {
        return out.item(&accepted, &TASK);
    }
    let task = follow(s, &task_id, Duration::from_secs(3600), true).await?;
    ended(&task, out)
}

/// Prints a finished task's outcome: the resource it left on success (the
/// task itself when there is none, as after a delete); a failure is exit 8.
fn ended(task: &Value, out: Output) -> Result<(), Failure> {
    if task["taskStatus"] == "FAILED" {
        let error = serde_json::from_value::<ErrorDetail>(task["error"].clone())
            .map_or_else(|_| "no error given".to_owned(), |e| describe_error(&e));
        return Err(Failure::new(
            Exit::TaskFailed,
            format!(
                "task {} ({}) FAILED: {error}",
                task["taskId"].as_str().unwrap_or_default(),
                task["operation"].as_str().unwrap_or_default(),
            ),
        ));
    }
    match task.get("result") {
        Some(result) if result.is_object() => out.item(result, &INSTANCE),
        _ => out.item(task, &TASK),
    }
}

/// The operation and where it is: the last step done (or undone), else
/// the status.
fn progress_message(task: &Value) -> String {
    let operation = task["operation"].as_str().unwrap_or("task");
    let last = task["steps"].as_array().and_then(|steps| steps.last());
    match last {
        Some(step) => {
            let name = step["name"].as_str().unwrap_or_default();
            match step["action"].as_str() {
                Some("undo") => format!("{operation}: undid {name}"),
                _ => format!("{operation}: {name}"),
            }
        }
        None => format!(
            "{operation} {}",
            task["taskStatus"]
                .as_str()
                .unwrap_or_default()
                .to_lowercase()
        ),
    }
}

/// Long-polls a task until it ends or `timeout` passes, with a progress
/// bar when `progress` is asked for and stderr is a terminal.
pub(crate) async fn follow(
    s: &mut Session,
    task_id: &str,
    timeout: Duration,
    progress: bool,
) -> Result<Value, Failure> {
    let bar = (progress && std::io::stderr().is_terminal()).then(|| {
        let bar = ProgressBar::new(100);
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg:30} [{bar:30}] {pos:>3}%") {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    });
    let deadline = Instant::now() + timeout;
    let path = format!("/api/v2/tasks/{task_id}");
    let poll = if bar.is_some() { BAR_POLL } else { POLL };
    loop {
        let left = deadline
            .saturating_duration_since(Instant::now())
            .as_secs()
            .min(poll);
        let task = s
            .data(Request::get(&path).query("wait", Some(left)))
            .await?;
        let status = task["taskStatus"].as_str().unwrap_or_default().to_owned();
        if let Some(bar) = &bar {
            bar.set_position(task["progress"].as_u64().unwrap_or(0));
            bar.set_message(progress_message(&task));
        }
        if status == "SUCCESS" || status == "FAILED" {
            if let Some(bar) = &bar {
                bar.finish_and_clear();
            }
            return Ok(task);
        }
        if Instant::now() >= deadline {
            if let Some(bar) = &bar {
                bar.abandon();
            }
            return Err(Failure::new(
                Exit::Error,
                format!(
                    "task {task_id} is still {status} after {}",
                    humantime::format_duration(timeout)
                ),
            ));
        }
    }
}

pub async fn task(global: &Global, command: TaskCommand, out: Output) -> Result<(), Failure> {
    let mut s = Session::open(global).await?;
    let base = "/api/v2/tasks";
    match command {
        TaskCommand::List {
            status,
            resource,
            paging,
        } => {
            let request = Request::get(base)
                .query("status", status)
                .query("resourceId", resource);
            let items = s.list(request, &paging).await?;
            out.list(&items, &TASK)
        }
        TaskCommand::Get { id } => show(&mut s, format!("{base}/{id}"), &TASK, out).await,
        TaskCommand::Wait { id, timeout } => {
            let task = follow(&mut s, &id.to_string(), timeout.into(), true).await?;
            ended(&task, out)
        }
        TaskCommand::Cancel { id } => {
            let value = s
                .data(Request::new(Method::DELETE, format!("{base}/{id}")))
                .await?;
            out.item(&value, &TASK)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_names_the_last_step() {
        let task = json!({"operation": "create", "taskStatus": "PENDING", "steps": []});
        assert_eq!(progress_message(&task), "create pending");
        let task = json!({"operation": "create", "taskStatus": "PENDING",
            "steps": [{"name": "allocate", "action": "do", "outcome": "done"},
                      {"name": "boot", "action": "do", "outcome": "done"}]});
        assert_eq!(progress_message(&task), "create: boot");
        let task = json!({"operation": "create", "taskStatus": "PENDING",
            "steps": [{"name": "allocate", "action": "undo", "outcome": "done"}]});
        assert_eq!(progress_message(&task), "create: undid allocate");
    }
}
