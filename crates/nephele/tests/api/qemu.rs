//! The QEMU driver with real QEMU (TCG, 64 MiB guests, tiny disks).
//!
//! These tests need `qemu-system-x86_64` and `qemu-img`. Where they are
//! missing the tests say so and pass, so the rest of the suite runs on a
//! machine without QEMU; CI sets `NEPHELE_REQUIRE_QEMU=1`, which turns a
//! missing QEMU into a failure.

use crate::support::*;
use nephele::config::{DriverKind, QemuAccel, ServerConfig};
use nephele_api_types as api;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn qemu_present() -> bool {
    let works = |cmd: &str| {
        std::process::Command::new(cmd)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let present = works("qemu-system-x86_64") && works("qemu-img");
    if !present {
        assert!(
            std::env::var_os("NEPHELE_REQUIRE_QEMU").is_none(),
            "NEPHELE_REQUIRE_QEMU is set and qemu-system-x86_64 or qemu-img is missing"
        );
        eprintln!("qemu-system-x86_64 or qemu-img is missing: QEMU driver test skipped");
    }
    present
}

fn qemu(config: &mut ServerConfig) {
    config.driver = DriverKind::Qemu;
    config.qemu_accel = QemuAccel::Tcg;
    // The guests have no operating system to answer an ACPI power-down.
    config.qemu_stop_grace = Duration::from_millis(200);
}

/// Kills every QEMU process started for a data dir, whatever a test left
/// behind when it failed.
struct Reaper(PathBuf);

impl Drop for Reaper {
    fn drop(&mut self) {
        for pid in qemu_pids(&self.0) {
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status();
        }
    }
}

/// The QEMU processes whose command line names `dir`.
fn qemu_pids(dir: &Path) -> Vec<u32> {
    let needle = dir.display().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                let c = String::from_utf8_lossy(&c);
                c.contains("qemu-system") && c.contains(&needle)
            })
        })
        .collect()
}

fn machine_dir(s: &TestServer, id: &str) -> PathBuf {
    s.data_dir().join("machines").join(id)
}

fn pid_of(s: &TestServer, id: &str) -> u32 {
    std::fs::read_to_string(machine_dir(s, id).join("qemu.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

async fn wait_gone(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(pid) {
        assert!(Instant::now() < deadline, "QEMU {pid} is still there");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn state(s: &TestServer, id: &str) -> String {
    s.admin_client()
        .instance(id)
        .await
        .expect("the instance")
        .state
}

async fn wait_state(s: &TestServer, id: &str, wanted: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = state(s, id).await;
        if now == wanted {
            return;
        }
        assert!(Instant::now() < deadline, "still {now}, never {wanted}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Deletes an instance and waits for the task to succeed.
async fn delete(s: &TestServer, id: &str) {
    let t = s.ended(s.admin_client().delete_instance(id).await).await;
    assert_eq!(t.task_status, "SUCCESS", "{t:?}");
}

/// `qemu-img info` of a disk (shared: QEMU may hold it open).
fn disk_info(disk: &Path) -> Value {
    let info = std::process::Command::new("qemu-img")
        .args(["info", "-U", "--output=json"])
        .arg(disk)
        .output()
        .unwrap();
    serde_json::from_slice(&info.stdout).unwrap()
}

/// Runs an operation and waits for its task; the task.
async fn operate(s: &TestServer, id: &str, op: &str) -> api::Task {
    s.ended(s.admin_client().instance_action(id, op).await)
        .await
}

/// Asks for an instance in the root organization; the task, once ended.
async fn create_as(s: &TestServer, instance: &api::InstanceCreate) -> api::Task {
    let root = s.root_org().await;
    let accepted = s.admin_client().create_instance(Some(root), instance).await;
    s.ended(accepted).await
}

/// A machine of one CPU and `memory_mib`.
fn machine(name: &str, image: &str, memory_mib: i64) -> api::InstanceCreate {
    api::InstanceCreate {
        name: Some(name.to_owned()),
        image: Some(image.to_owned()),
        cpu: Some(1),
        memory_mib: Some(memory_mib),
        ..Default::default()
    }
}

/// A small machine: 1 CPU, 64 MiB, 1 GiB of disk.
async fn create(s: &TestServer, name: &str, image: &str) -> api::Task {
    let instance = api::InstanceCreate {
        disk_gib: Some(1),
        ..machine(name, image, 64)
    };
    create_as(s, &instance).await
}

/// The message of a failed task's error.
fn failure(t: &api::Task) -> &str {
    assert_eq!(t.task_status, "FAILED", "{t:?}");
    &t.error.as_ref().expect("a failed task's error").message
}

async fn running_machine(s: &TestServer, name: &str, image: &str) -> String {
    let t = create(s, name, image).await;
    assert_eq!(t.task_status, "SUCCESS", "{t:?}");
    t.resource_id
}

/// What the driver's QMP `query-status` says of the machine.
async fn power(s: &TestServer, id: &str) -> Option<nephele_drivers::Power> {
    s.app().driver().status(id.parse().unwrap()).await.unwrap()
}

async fn qemu_server() -> TestServer {
    let s = TestServer::start_with(qemu).await;
    let r = s.post("/occm/setup/init", &setup_body()).await;
    assert_eq!(r.status(), 201);
    s
}

#[tokio::test]
async fn a_machine_is_created_stopped_started_rebooted_and_deleted_through_qmp() {
    if !qemu_present() {
        return;
    }
    let s = qemu_server().await;
    let _reaper = Reaper(s.data_dir().to_owned());
    let images = s.data_dir().join("images");
    let made = std::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(images.join("tiny.qcow2"))
        .arg("16M")
        .status()
        .unwrap();
    assert!(made.success());
    std::fs::write(images.join("notes.txt"), "not an image").unwrap();

    let images = s.admin_client().images().await.expect("the images").data;
    let names: Vec<&str> = images.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["blank", "tiny"], "{images:?}");
    assert_eq!(images[1].format, "qcow2");

    let root = s.root_org().await;
    let unknown = machine("x", "debian-12", 64);
    let refused = s.admin_client().create_instance(Some(root), &unknown).await;
    let errors = assert_refused(refused, 422, 3001);
    assert_eq!(fields_of(&errors), ["image"]);

    // Created: an overlay of the image, running under QEMU.
    let id = running_machine(&s, "vm-1", "tiny").await;
    assert_eq!(state(&s, &id).await, "Running");
    assert_eq!(power(&s, &id).await, Some(nephele_drivers::Power::Running));
    let dir = machine_dir(&s, &id);
    let info = disk_info(&dir.join("disk.qcow2"));
    assert!(
        info["backing-filename"]
            .as_str()
            .is_some_and(|b| b.ends_with("images/tiny.qcow2")),
        "{info}"
    );
    assert_eq!(info["virtual-size"], 1024 * 1024 * 1024, "{info}");
    assert!(dir.join("qmp.sock").exists());
    assert!(dir.join("console.log").exists());
    let pid = pid_of(&s, &id);
    assert!(alive(pid));

    // Stopped: the process and its socket are gone, the disk stays.
    let t = operate(&s, &id, "stop").await;
    assert_eq!(t.task_status, "SUCCESS", "{t:?}");
    assert_eq!(state(&s, &id).await, "Stopped");
    wait_gone(pid).await;
    assert!(!dir.join("qmp.sock").exists());
    assert!(dir.join("disk.qcow2").exists());
    assert_eq!(power(&s, &id).await, Some(nephele_drivers::Power::Stopped));

    let t = operate(&s, &id, "start").await;
    assert_eq!(t.task_status, "SUCCESS", "{t:?}");
    let pid = pid_of(&s, &id);
    assert!(alive(pid));
    let t = operate(&s, &id, "reboot").await;
    assert_eq!(t.task_status, "SUCCESS", "{t:?}");
    assert_eq!(state(&s, &id).await, "Running");
    assert_eq!(pid_of(&s, &id), pid, "a reboot keeps the process");

    // Killed from outside: the record follows.
    std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    wait_state(&s, &id, "Stopped").await;
    let t = operate(&s, &id, "start").await;
    assert_eq!(t.task_status, "SUCCESS", "{t:?}");
    let pid = pid_of(&s, &id);

    // Deleted: nothing left.
    delete(&s, &id).await;
    wait_gone(pid).await;
    assert!(!dir.exists());

    // A blank disk of the instance's size.
    let id = running_machine(&s, "vm-2", "blank").await;
    let info = disk_info(&machine_dir(&s, &id).join("disk.qcow2"));
    assert!(info["backing-filename"].is_null(), "{info}");
    delete(&s, &id).await;
    assert!(qemu_pids(s.data_dir()).is_empty());
    s.stop().await;
}

#[tokio::test]
async fn a_restart_keeps_machines_running_and_finds_those_that_died_meanwhile() {
    if !qemu_present() {
        return;
    }
    let s = qemu_server().await;
    let _reaper = Reaper(s.data_dir().to_owned());
    let kept = running_machine(&s, "kept", "blank").await;
    let killed = running_machine(&s, "killed", "blank").await;
    let vanished = running_machine(&s, "vanished", "blank").await;
    let kept_pid = pid_of(&s, &kept);
    let killed_pid = pid_of(&s, &killed);
    let vanished_pid = pid_of(&s, &vanished);
    let vanished_dir = machine_dir(&s, &vanished);

    let s = s
        .restart(|c| {
            qemu(c);
            // While the server is down, one machine dies, and another
            // dies and loses its disk.
            for pid in [killed_pid, vanished_pid] {
                std::process::Command::new("kill")
                    .args(["-9", &pid.to_string()])
                    .status()
                    .unwrap();
            }
            std::fs::remove_dir_all(&vanished_dir).unwrap();
        })
        .await;
    wait_gone(killed_pid).await;

    assert_eq!(state(&s, &kept).await, "Running");
    assert!(alive(kept_pid), "the restart must not stop the machine");
    assert_eq!(pid_of(&s, &kept), kept_pid);
    assert_eq!(
        power(&s, &kept).await,
        Some(nephele_drivers::Power::Running)
    );
    wait_state(&s, &killed, "Stopped").await;
    assert!(!machine_dir(&s, &killed).join("qmp.sock").exists());
    wait_state(&s, &vanished, "Error").await;

    for id in [&kept, &killed, &vanished] {
        delete(&s, id).await;
    }
    assert!(qemu_pids(s.data_dir()).is_empty());
    s.stop().await;
}

#[tokio::test]
async fn qemu_that_cannot_start_fails_the_task_with_its_own_words_and_leaves_nothing() {
    if !qemu_present() {
        return;
    }
    let scripts = tempfile::tempdir().unwrap();
    let broken = scripts.path().join("broken-qemu");
    std::fs::write(
        &broken,
        "#!/bin/sh\necho 'qemu-system-x86_64: -m 64: something is badly wrong' >&2\nexit 1\n",
    )
    .unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&broken)
        .status()
        .unwrap();
    let s = TestServer::start_with(|c| {
        qemu(c);
        c.qemu_binary = broken.clone();
    })
    .await;
    let r = s.post("/occm/setup/init", &setup_body()).await;
    assert_eq!(r.status(), 201);

    let t = create(&s, "doomed", "blank").await;
    assert!(failure(&t).contains("something is badly wrong"), "{t:?}");
    assert!(
        !machine_dir(&s, &t.resource_id).exists(),
        "the disk is removed again"
    );

    // An image qemu-img cannot read: its own words, no disk left.
    std::fs::write(
        s.data_dir().join("images").join("garbled.qcow2"),
        "not a qcow2 image",
    )
    .unwrap();
    let t = create(&s, "garbled", "garbled").await;
    assert!(failure(&t).contains("qemu-img"), "{t:?}");
    assert!(
        !machine_dir(&s, &t.resource_id).exists(),
        "the disk is removed again"
    );

    // More memory than the host has: refused before QEMU runs.
    let t = create_as(&s, &machine("huge", "blank", 1_000_000)).await;
    assert!(failure(&t).contains("MiB of memory"), "{t:?}");
    s.stop().await;

    // No QEMU at all.
    let s = TestServer::start_with(|c| {
        qemu(c);
        c.qemu_binary = PathBuf::from("/nonexistent/qemu-system-x86_64");
    })
    .await;
    let r = s.post("/occm/setup/init", &setup_body()).await;
    assert_eq!(r.status(), 201);
    let t = create(&s, "nothing", "blank").await;
    assert!(
        failure(&t).contains("/nonexistent/qemu-system-x86_64"),
        "{t:?}"
    );
    s.stop().await;
}

/// A disk whose boot sector powers the machine off through ACPI (PIIX4's
/// PM1a control port 0x604, SLP_EN), as a guest OS would.
fn power_off_image(path: &Path) {
    let code = [
        0xBA, 0x04, 0x06, // mov dx, 0x604
        0xB8, 0x00, 0x20, // mov ax, 0x2000
        0xEF, // out dx, ax
        0xF4, // hlt
        0xEB, 0xFD, // jmp back to hlt
    ];
    let mut disk = vec![0u8; 1024 * 1024];
    disk[..code.len()].copy_from_slice(&code);
    disk[510] = 0x55;
    disk[511] = 0xAA;
    std::fs::write(path, disk).unwrap();
}

#[tokio::test]
async fn a_guest_that_powers_itself_off_shows_stopped() {
    if !qemu_present() {
        return;
    }
    let s = qemu_server().await;
    let _reaper = Reaper(s.data_dir().to_owned());
    power_off_image(&s.data_dir().join("images").join("poweroff.raw"));

    // It powers off at once, while its create task may still run: the
    // record follows once the task is done.
    let id = running_machine(&s, "short-lived", "poweroff").await;
    wait_state(&s, &id, "Stopped").await;
    assert!(qemu_pids(s.data_dir()).is_empty());
    let console = machine_dir(&s, &id).join("console.log");
    assert!(console.exists());

    delete(&s, &id).await;
    assert!(!machine_dir(&s, &id).exists());
    s.stop().await;
}
