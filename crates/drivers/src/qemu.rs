//! The QEMU driver: every instance is a `qemu-system-x86_64` process.
//!
//! Each machine has a directory `DATA_DIR/machines/ID` holding its disk
//! (`disk.qcow2`, made by `qemu-img`: an overlay of the image, or blank),
//! its QMP socket (`qmp.sock`), its serial console (`console.log`), the
//! process id (`qemu.pid`) and the last reboot's task (`rebooted-by`).
//! QEMU runs daemonized, so a server restart leaves the machines running;
//! they are found again by their sockets. Every operation goes through
//! QMP, and QEMU's events are passed on as [`Driver::changes`] so the
//! record follows a guest that powers itself off or a process killed
//! from outside.

use crate::qmp::{Qmp, QmpError, QmpEvent};
use crate::{Driver, Image, MachineSpec, Power};
use async_trait::async_trait;
use nephele_common::ids::{InstanceId, TaskId};
use nephele_common::{Error, ErrorCode, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::mpsc;

/// The image name that asks for an empty disk of the instance's size.
pub const BLANK_IMAGE: &str = "blank";
/// Every QMP call, the connection included, answers within this.
const QMP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `qemu-system-x86_64 -daemonize` may take to hand over.
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a process that was told to quit gets before it is killed.
const QUIT_TIMEOUT: Duration = Duration::from_secs(5);
/// A Unix socket path is at most this long (`sun_path`, with its NUL).
const MAX_SOCKET_PATH: usize = 107;

/// Which accelerator QEMU uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    /// KVM when `/dev/kvm` can be opened for reading and writing, TCG otherwise.
    Auto,
    Kvm,
    Tcg,
}

/// The guests' network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// No network device at all.
    None,
    /// QEMU's user-mode network (outbound only, NAT inside QEMU).
    User,
}

#[derive(Debug, Clone)]
pub struct QemuConfig {
    /// The server's data dir: images in `images/`, machines in `machines/`.
    pub data_dir: PathBuf,
    pub qemu: PathBuf,
    pub qemu_img: PathBuf,
    pub accel: Accel,
    /// How long a guest gets to power off after an ACPI power-down
    /// before QEMU is told to quit.
    pub stop_grace: Duration,
    pub network: Network,
}

#[derive(Debug)]
pub struct QemuDriver {
    config: QemuConfig,
    /// `kvm` or `tcg`, decided once at start.
    accel: &'static str,
    /// One QMP connection per running machine: QEMU serves one client at
    /// a time, so every call and the event watch share it.
    monitors: tokio::sync::Mutex<HashMap<InstanceId, Qmp>>,
    changed: mpsc::UnboundedSender<InstanceId>,
    changes: Mutex<Option<mpsc::UnboundedReceiver<InstanceId>>>,
}

/// A hypervisor failure, told as it is: the task's error shows it.
fn failure(message: impl Into<String>) -> Error {
    Error::new(ErrorCode::Unavailable, message)
}

fn qmp_failure(id: InstanceId, e: QmpError) -> Error {
    failure(format!("machine {id}: {e}"))
}

fn io_failure(what: &str, path: &Path, e: std::io::Error) -> Error {
    failure(format!("{what} {}: {e}", path.display()))
}

/// QEMU's option syntax doubles a comma that is part of a value.
fn option_value(path: &Path) -> String {
    path.display().to_string().replace(',', ",,")
}

/// Whether `/dev/kvm` is there and ours to use; the reason when not.
fn kvm_usable() -> std::result::Result<(), String> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .map(|_| ())
        .map_err(|e| format!("/dev/kvm: {e}"))
}

/// The host's memory in MiB, from `/proc/meminfo`.
fn host_memory_mib() -> Option<i64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: i64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

impl QemuDriver {
    /// Makes the image and machine directories and picks the accelerator.
    /// A missing QEMU is not an error here: each task that needs it fails
    /// with the reason, and the server still serves everything else.
    pub fn new(config: QemuConfig) -> Result<QemuDriver> {
        for dir in [config.images_dir(), config.machines_dir()] {
            std::fs::create_dir_all(&dir).map_err(|e| io_failure("creating", &dir, e))?;
        }
        let accel = match config.accel {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
            Accel::Auto => match kvm_usable() {
                Ok(()) => "kvm",
                Err(reason) => {
                    tracing::info!(%reason, "KVM is not usable; QEMU will emulate (TCG)");
                    "tcg"
                }
            },
        };
        tracing::info!(
            accel,
            qemu = %config.qemu.display(),
            images = %config.images_dir().display(),
            "qemu driver ready"
        );
        let (changed, changes) = mpsc::unbounded_channel();
        Ok(QemuDriver {
            config,
            accel,
            monitors: tokio::sync::Mutex::new(HashMap::new()),
            changed,
            changes: Mutex::new(Some(changes)),
        })
    }

    /// `kvm` or `tcg`.
    pub fn accel(&self) -> &'static str {
        self.accel
    }

    fn dir(&self, id: InstanceId) -> PathBuf {
        self.config.machines_dir().join(id.to_string())
    }

    fn socket(&self, id: InstanceId) -> PathBuf {
        self.dir(id).join("qmp.sock")
    }

    fn pid_file(&self, id: InstanceId) -> PathBuf {
        self.dir(id).join("qemu.pid")
    }

    fn disk(&self, id: InstanceId) -> PathBuf {
        self.dir(id).join("disk.qcow2")
    }

    /// The machine's QEMU process, if it lives. The command line must
    /// name the machine's directory, so a reused pid is not mistaken
    /// for it.
    fn process(&self, id: InstanceId) -> Option<rustix::process::Pid> {
        let text = std::fs::read_to_string(self.pid_file(id)).ok()?;
        let pid = rustix::process::Pid::from_raw(text.trim().parse().ok()?)?;
        let cmdline = std::fs::read(format!("/proc/{}/cmdline", pid.as_raw_nonzero())).ok()?;
        let dir = self.dir(id).display().to_string();
        String::from_utf8_lossy(&cmdline)
            .contains(&dir)
            .then_some(pid)
    }

    /// Removes what a process that is gone left behind.
    fn clear_leftovers(&self, id: InstanceId) {
        for path in [self.socket(id), self.pid_file(id)] {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(path = %path.display(), error = %e, "cannot remove"),
            }
        }
    }

    /// The QMP connection to a live machine, made on first use; `None`
    /// when no process runs.
    async fn monitor(&self, id: InstanceId) -> Result<Option<Qmp>> {
        let mut monitors = self.monitors.lock().await;
        if let Some(qmp) = monitors.get(&id) {
            if !qmp.is_closed() {
                return Ok(Some(qmp.clone()));
            }
            monitors.remove(&id);
        }
        if self.process(id).is_none() {
            self.clear_leftovers(id);
            return Ok(None);
        }
        let (qmp, events) = match Qmp::connect(&self.socket(id), QMP_TIMEOUT).await {
            Ok(connected) => connected,
            // It was on its way out.
            Err(_) if self.process(id).is_none() => {
                self.clear_leftovers(id);
                return Ok(None);
            }
            Err(e) => return Err(qmp_failure(id, e)),
        };
        monitors.insert(id, qmp.clone());
        tokio::spawn(watch(id, events, self.changed.clone()));
        Ok(Some(qmp))
    }

    async fn execute(&self, id: InstanceId, qmp: &Qmp, command: &str) -> Result<serde_json::Value> {
        qmp.execute(command, None)
            .await
            .map_err(|e| qmp_failure(id, e))
    }

    /// Is the guest running (not paused, not never-continued)? A QEMU
    /// that hangs up instead of answering is ending: not running.
    async fn running(&self, id: InstanceId, qmp: &Qmp) -> Result<bool> {
        match qmp.execute("query-status", None).await {
            Ok(status) => Ok(status["running"].as_bool().unwrap_or(false)),
            Err(QmpError::Closed) => Ok(false),
            Err(e) => Err(qmp_failure(id, e)),
        }
    }

    /// Ends the machine's process: an ACPI power-down first when
    /// `grace` is given, then `quit`, then SIGKILL.
    async fn end_process(&self, id: InstanceId, grace: Option<Duration>) -> Result<()> {
        let Some(pid) = self.process(id) else {
            self.clear_leftovers(id);
            return Ok(());
        };
        match self.monitor(id).await {
            Ok(Some(qmp)) => {
                // A QEMU that fails to answer here is ended all the same.
                let mut ended = false;
                if let Some(grace) = grace {
                    if self.running(id, &qmp).await.unwrap_or(false)
                        && qmp.execute("system_powerdown", None).await.is_ok()
                    {
                        ended = tokio::time::timeout(grace, qmp.closed()).await.is_ok();
                    }
                }
                if !ended {
                    // QEMU answers `quit` and closes the socket, or is
                    // already closing it.
                    match qmp.execute("quit", None).await {
                        Ok(_) | Err(QmpError::Closed) => {}
                        Err(e) => tracing::warn!(%id, error = %e, "QEMU did not take quit"),
                    }
                    let _ = tokio::time::timeout(QUIT_TIMEOUT, qmp.closed()).await;
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(%id, error = %e, "no QMP; killing the process"),
        }
        if !self.wait_gone(id, QUIT_TIMEOUT).await {
            tracing::warn!(%id, pid = pid.as_raw_nonzero().get(), "QEMU did not quit; killing it");
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            if !self.wait_gone(id, QUIT_TIMEOUT).await {
                return Err(failure(format!(
                    "machine {id}: QEMU process {} does not end",
                    pid.as_raw_nonzero()
                )));
            }
        }
        self.clear_leftovers(id);
        Ok(())
    }

    async fn wait_gone(&self, id: InstanceId, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        while self.process(id).is_some() {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    /// The image file an image name stands for (`None` for blank).
    async fn image_file(&self, name: &str) -> Result<Option<(PathBuf, String)>> {
        if name == BLANK_IMAGE {
            return Ok(None);
        }
        let images = self.images().await?;
        let image = images.iter().find(|i| i.name == name).ok_or_else(|| {
            failure(format!(
                "no image {name:?} in {}",
                self.config.images_dir().display()
            ))
        })?;
        let file = format!("{}.{}", image.name, image.format);
        Ok(Some((
            self.config.images_dir().join(file),
            image.format.clone(),
        )))
    }

    /// Runs `qemu-img` and gives its standard output, or its own error.
    async fn qemu_img(&self, args: &[&str]) -> Result<String> {
        let out = tokio::process::Command::new(&self.config.qemu_img)
            .args(args)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| io_failure("cannot run", &self.config.qemu_img, e))?;
        if !out.status.success() {
            return Err(failure(format!(
                "qemu-img {}: {}",
                args.first().unwrap_or(&""),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    async fn make_disk(&self, spec: &MachineSpec, path: &Path) -> Result<()> {
        let bytes = spec.disk_gib.max(1) as u64 * 1024 * 1024 * 1024;
        let target = path.display().to_string();
        match self.image_file(&spec.image).await? {
            None => {
                self.qemu_img(&["create", "-q", "-f", "qcow2", &target, &bytes.to_string()])
                    .await?;
            }
            Some((image, format)) => {
                let image = image.display().to_string();
                let format = format.as_str();
                let info = self
                    .qemu_img(&["info", "--output=json", "-f", format, &image])
                    .await?;
                let base = serde_json::from_str::<serde_json::Value>(&info)
                    .ok()
                    .and_then(|v| v["virtual-size"].as_u64())
                    .unwrap_or(0);
                let mut args = vec!["create", "-q", "-f", "qcow2", "-b", &image, "-F", format];
                args.push(&target);
                // An overlay cannot be smaller than its image; it grows to
                // the instance's size when that is larger.
                let size = bytes.to_string();
                if bytes > base {
                    args.push(&size);
                }
                self.qemu_img(&args).await?;
            }
        }
        Ok(())
    }

    fn launch_args(&self, spec: &MachineSpec) -> Vec<String> {
        let dir = self.dir(spec.id);
        let mut args: Vec<String> = vec![
            "-name".into(),
            format!("nephele-{}", spec.id),
            "-accel".into(),
            self.accel.into(),
            "-smp".into(),
            spec.cpu.to_string(),
            "-m".into(),
            spec.memory_mib.to_string(),
            "-nodefaults".into(),
            "-no-user-config".into(),
            "-display".into(),
            "none".into(),
            "-drive".into(),
            format!(
                "file={},if=virtio,format=qcow2",
                option_value(&self.disk(spec.id))
            ),
            "-qmp".into(),
            format!(
                "unix:{},server=on,wait=off",
                option_value(&self.socket(spec.id))
            ),
            "-serial".into(),
            format!("file:{}", option_value(&dir.join("console.log"))),
            "-pidfile".into(),
            self.pid_file(spec.id).display().to_string(),
            "-daemonize".into(),
            // Paused until QMP says `cont`: the start is ours to confirm.
            "-S".into(),
        ];
        if self.accel == "kvm" {
            args.extend(["-cpu".into(), "host".into()]);
        }
        match self.config.network {
            Network::None => args.extend(["-nic".into(), "none".into()]),
            Network::User => args.extend(["-nic".into(), "user,model=virtio-net-pci".into()]),
        }
        args
    }

    /// Starts QEMU (paused) for a machine that has no process.
    async fn launch(&self, spec: &MachineSpec) -> Result<()> {
        let socket = self.socket(spec.id);
        if socket.as_os_str().len() > MAX_SOCKET_PATH {
            return Err(failure(format!(
                "the QMP socket path {} is longer than a Unix socket allows; use a shorter data dir",
                socket.display()
            )));
        }
        if let Some(host) = host_memory_mib() {
            if spec.memory_mib > host {
                return Err(failure(format!(
                    "the machine needs {} MiB of memory and the host has {host} MiB",
                    spec.memory_mib
                )));
            }
        }
        self.clear_leftovers(spec.id);
        let run = tokio::process::Command::new(&self.config.qemu)
            .args(self.launch_args(spec))
            .current_dir(self.dir(spec.id))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(LAUNCH_TIMEOUT, run)
            .await
            .map_err(|_| failure(format!("QEMU did not start within {LAUNCH_TIMEOUT:?}")))?
            .map_err(|e| io_failure("cannot run", &self.config.qemu, e))?;
        if !out.status.success() {
            self.end_process(spec.id, None).await?;
            return Err(failure(format!(
                "QEMU failed to start: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        tracing::info!(id = %spec.id, accel = self.accel, "QEMU started");
        Ok(())
    }
}

/// What a directory holds.
async fn entries(dir: &Path) -> Result<Vec<tokio::fs::DirEntry>> {
    let mut found = Vec::new();
    let mut reading = tokio::fs::read_dir(dir)
        .await
        .map_err(|e| io_failure("reading", dir, e))?;
    while let Some(entry) = reading
        .next_entry()
        .await
        .map_err(|e| io_failure("reading", dir, e))?
    {
        found.push(entry);
    }
    Ok(found)
}

/// Passes QEMU's events on as changes of the machine, and the end of the
/// connection (the process is gone) as one more.
async fn watch(
    id: InstanceId,
    mut events: mpsc::UnboundedReceiver<QmpEvent>,
    changed: mpsc::UnboundedSender<InstanceId>,
) {
    while let Some(event) = events.recv().await {
        tracing::debug!(%id, event = %event.event, data = %event.data, "QEMU event");
        if matches!(
            event.event.as_str(),
            "SHUTDOWN" | "STOP" | "RESET" | "RESUME"
        ) {
            let _ = changed.send(id);
        }
    }
    let _ = changed.send(id);
}

impl QemuConfig {
    pub fn images_dir(&self) -> PathBuf {
        self.data_dir.join("images")
    }

    pub fn machines_dir(&self) -> PathBuf {
        self.data_dir.join("machines")
    }
}

#[async_trait]
impl Driver for QemuDriver {
    fn name(&self) -> &'static str {
        "qemu"
    }

    async fn images(&self) -> Result<Vec<Image>> {
        let dir = self.config.images_dir();
        let mut found = std::collections::BTreeMap::new();
        found.insert(
            BLANK_IMAGE.to_owned(),
            Image {
                name: BLANK_IMAGE.to_owned(),
                format: "qcow2".to_owned(),
                size_bytes: None,
            },
        );
        for entry in entries(&dir).await? {
            let path = entry.path();
            let (Some(name), Some(format)) = (
                path.file_stem().and_then(|s| s.to_str()),
                path.extension().and_then(|s| s.to_str()),
            ) else {
                continue;
            };
            // `blank` is taken, and NAME.qcow2 wins over NAME.raw.
            let wanted = match format {
                "qcow2" => name != BLANK_IMAGE,
                "raw" => !found.contains_key(name),
                _ => false,
            };
            if wanted {
                let size_bytes = entry.metadata().await.ok().map(|m| m.len());
                found.insert(
                    name.to_owned(),
                    Image {
                        name: name.to_owned(),
                        format: format.to_owned(),
                        size_bytes,
                    },
                );
            }
        }
        Ok(found.into_values().collect())
    }

    async fn has_image(&self, image: &str) -> Result<bool> {
        Ok(self.images().await?.iter().any(|i| i.name == image))
    }

    async fn create(&self, spec: &MachineSpec) -> Result<()> {
        let disk = self.disk(spec.id);
        if tokio::fs::try_exists(&disk).await.unwrap_or(false) {
            return Ok(());
        }
        let dir = self.dir(spec.id);
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| io_failure("creating", &dir, e))?;
        // Made under another name and renamed: a disk that exists is whole.
        let partial = dir.join("disk.qcow2.partial");
        let made = match self.make_disk(spec, &partial).await {
            Ok(()) => tokio::fs::rename(&partial, &disk)
                .await
                .map_err(|e| io_failure("renaming", &partial, e)),
            Err(e) => Err(e),
        };
        if made.is_err() {
            let _ = tokio::fs::remove_dir_all(&dir).await;
        }
        made
    }

    async fn start(&self, spec: &MachineSpec) -> Result<()> {
        if !tokio::fs::try_exists(self.disk(spec.id))
            .await
            .unwrap_or(false)
        {
            return Err(failure(format!("machine {} has no disk", spec.id)));
        }
        if self.process(spec.id).is_none() {
            self.launch(spec).await?;
        }
        let started = async {
            let qmp = self
                .monitor(spec.id)
                .await?
                .ok_or_else(|| failure(format!("machine {}: QEMU exited at start", spec.id)))?;
            if !self.running(spec.id, &qmp).await? {
                self.execute(spec.id, &qmp, "cont").await?;
            }
            Ok(())
        }
        .await;
        if started.is_err() {
            self.end_process(spec.id, None).await?;
        }
        started
    }

    async fn stop(&self, id: InstanceId) -> Result<()> {
        self.end_process(id, Some(self.config.stop_grace)).await
    }

    async fn reboot(&self, id: InstanceId, task: TaskId) -> Result<()> {
        let marker = self.dir(id).join("rebooted-by");
        if tokio::fs::read_to_string(&marker).await.ok().as_deref() == Some(&task.to_string()) {
            return Ok(());
        }
        let Some(qmp) = self.monitor(id).await? else {
            return Err(failure(format!("machine {id} is not running")));
        };
        self.execute(id, &qmp, "system_reset").await?;
        tokio::fs::write(&marker, task.to_string())
            .await
            .map_err(|e| io_failure("writing", &marker, e))
    }

    async fn delete(&self, id: InstanceId) -> Result<()> {
        self.end_process(id, None).await?;
        let dir = self.dir(id);
        match tokio::fs::remove_dir_all(&dir).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_failure("removing", &dir, e)),
        }
    }

    async fn status(&self, id: InstanceId) -> Result<Option<Power>> {
        if !tokio::fs::try_exists(self.disk(id)).await.unwrap_or(false) {
            return Ok(None);
        }
        let running = match self.monitor(id).await? {
            Some(qmp) => self.running(id, &qmp).await?,
            None => false,
        };
        Ok(Some(if running {
            Power::Running
        } else {
            Power::Stopped
        }))
    }

    fn changes(&self) -> Option<mpsc::UnboundedReceiver<InstanceId>> {
        self.changes.lock().ok()?.take()
    }

    async fn machines(&self) -> Result<Vec<InstanceId>> {
        let dir = self.config.machines_dir();
        Ok(entries(&dir)
            .await?
            .iter()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commas_in_paths_are_doubled_for_qemu() {
        assert_eq!(option_value(Path::new("/a,b/c")), "/a,,b/c");
        assert_eq!(option_value(Path::new("/plain")), "/plain");
    }

    #[test]
    fn host_memory_is_read() {
        assert!(host_memory_mib().is_some_and(|m| m > 0));
    }
}
