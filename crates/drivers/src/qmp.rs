//! A QMP (QEMU Machine Protocol) client over a Unix socket.
//!
//! [`Qmp::connect`] reads QEMU's greeting and leaves capabilities-negotiation
//! mode with `qmp_capabilities`; [`Qmp::execute`] then sends commands tagged
//! with numeric ids, so calls from several tasks may be in flight at once and
//! replies are matched by id rather than by order. QEMU's asynchronous events
//! arrive on a channel. Every step is bounded by the timeout given at connect.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

/// QMP messages are a few KiB at most; a longer line means a broken peer, and
/// refusing it keeps a runaway stream from growing our buffer without bound.
const MAX_LINE: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum QmpError {
    #[error("QMP socket {path}: {source}")]
    Connect {
        path: String,
        source: std::io::Error,
    },
    #[error("QMP: no answer to {what} within {timeout:?}")]
    Timeout { what: String, timeout: Duration },
    #[error("QMP: {0}")]
    Protocol(String),
    #[error("QEMU refused {command}: {class}: {desc}")]
    Command {
        command: String,
        class: String,
        desc: String,
    },
    #[error("QMP connection closed")]
    Closed,
    #[error("QMP: {0}")]
    Io(#[from] std::io::Error),
}

/// An asynchronous event from QEMU; `data` is `Value::Null` when QEMU sent none.
#[derive(Debug, Clone, PartialEq)]
pub struct QmpEvent {
    pub event: String,
    pub data: Value,
}

/// Calls waiting for a reply, by id. `None` once the connection has ended, so
/// that a call starting after that fails at once instead of waiting for a
/// reply that can no longer come.
type Pending = Mutex<Option<HashMap<u64, oneshot::Sender<Value>>>>;

/// One connection to one QEMU's QMP monitor. Cheap to clone (Arc inside); all
/// clones share the connection, which closes when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct Qmp {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// `None` after a write failed or was cancelled part-way (see `execute`).
    writer: tokio::sync::Mutex<Option<OwnedWriteHalf>>,
    pending: Arc<Pending>,
    next_id: AtomicU64,
    closed: watch::Receiver<bool>,
    timeout: Duration,
    reader: JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The reader task owns the read half; without this it would keep the
        // socket open for as long as QEMU does.
        self.reader.abort();
    }
}

impl Qmp {
    /// Connects, reads the greeting and sends `qmp_capabilities`, all within
    /// `timeout`, which is also the timeout of every later [`Qmp::execute`].
    /// Returns the client and the receiver of QEMU's asynchronous events; the
    /// receiver ends (`recv()` gives `None`) when the connection closes.
    pub async fn connect(
        path: &Path,
        timeout: Duration,
    ) -> Result<(Qmp, mpsc::UnboundedReceiver<QmpEvent>), QmpError> {
        // Names the step in progress, for the error if the timeout hits.
        let mut step = "connect";
        let handshake = async {
            let stream = UnixStream::connect(path)
                .await
                .map_err(|source| QmpError::Connect {
                    path: path.display().to_string(),
                    source,
                })?;
            let (read, write) = stream.into_split();
            let mut reader = BufReader::new(read);
            step = "greeting";
            let mut line = Vec::new();
            if !read_line(&mut reader, &mut line).await? {
                return Err(QmpError::Closed);
            }
            let greeting: Value = serde_json::from_slice(&line)
                .map_err(|e| QmpError::Protocol(format!("malformed greeting: {e}")))?;
            if !greeting.get("QMP").is_some_and(Value::is_object) {
                let msg = format!("expected a greeting, got {greeting}");
                return Err(QmpError::Protocol(msg));
            }

            let pending = Arc::new(Mutex::new(Some(HashMap::new())));
            let (events_tx, events_rx) = mpsc::unbounded_channel();
            let (closed_tx, closed_rx) = watch::channel(false);
            let reader = read_loop(reader, Arc::clone(&pending), events_tx, closed_tx);
            let qmp = Qmp {
                inner: Arc::new(Inner {
                    writer: tokio::sync::Mutex::new(Some(write)),
                    pending,
                    next_id: AtomicU64::new(1),
                    closed: closed_rx,
                    timeout,
                    reader: tokio::spawn(reader),
                }),
            };
            step = "qmp_capabilities";
            qmp.execute("qmp_capabilities", None).await?;
            Ok((qmp, events_rx))
        };
        let outcome = tokio::time::timeout(timeout, handshake).await;
        outcome.map_err(|_| QmpError::Timeout {
            what: step.to_owned(),
            timeout,
        })?
    }

    /// Sends `command` (with `arguments` unless `None`) under a fresh numeric
    /// id and returns the `return` value of the reply with that id; an
    /// `error` reply is [`QmpError::Command`]. Safe to call from several tasks
    /// at once.
    pub async fn execute(
        &self,
        command: &str,
        arguments: Option<Value>,
    ) -> Result<Value, QmpError> {
        let inner = &self.inner;
        let id = inner.next_id.fetch_add(1, Ordering::Relaxed);
        let mut msg = json!({ "execute": command, "id": id });
        if let Some(arguments) = arguments {
            msg["arguments"] = arguments;
        }
        // Registered before sending, so the reply cannot beat us to the map.
        let (tx, rx) = oneshot::channel();
        lock(&inner.pending)
            .as_mut()
            .ok_or(QmpError::Closed)?
            .insert(id, tx);
        // Removes the entry however this call ends: timeout, write error, or
        // the caller dropping the future.
        let _unregister = Unregister {
            pending: &inner.pending,
            id,
        };
        let exchange = async {
            let mut writer = inner.writer.lock().await;
            // A half-written command would desynchronise the stream for every
            // later call, so the write half is only put back once the whole
            // line is out. Dropping it shuts our side, and QEMU then hangs up.
            let mut half = writer.take().ok_or(QmpError::Closed)?;
            half.write_all(format!("{msg}\n").as_bytes()).await?;
            *writer = Some(half);
            drop(writer);
            // The reader drops the sender when the connection ends.
            rx.await.map_err(|_| QmpError::Closed)
        };
        let reply = tokio::time::timeout(inner.timeout, exchange)
            .await
            .map_err(|_| QmpError::Timeout {
                what: command.to_owned(),
                timeout: inner.timeout,
            })??;
        into_result(command, reply)
    }

    /// Resolves once the connection has ended (QEMU exited or closed the
    /// socket). Returns at once if it already has.
    pub async fn closed(&self) {
        let mut closed = self.inner.closed.clone();
        // An error means the reader task is gone, which is closed too.
        let _ = closed.wait_for(|closed| *closed).await;
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        *self.inner.closed.borrow()
    }
}

struct Unregister<'a> {
    pending: &'a Pending,
    id: u64,
}

impl Drop for Unregister<'_> {
    fn drop(&mut self) {
        if let Some(map) = lock(self.pending).as_mut() {
            map.remove(&self.id);
        }
    }
}

/// Nothing panics while holding the lock, but if something ever did the map
/// is still consistent, so poisoning is no reason to fail.
fn lock(pending: &Pending) -> MutexGuard<'_, Option<HashMap<u64, oneshot::Sender<Value>>>> {
    pending.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Reads one line into `line`, newline included; `Ok(false)` at end of stream.
async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    line: &mut Vec<u8>,
) -> Result<bool, QmpError> {
    line.clear();
    // One byte over the limit is enough to tell an over-long line apart.
    let n = (&mut *reader)
        .take(MAX_LINE as u64 + 1)
        .read_until(b'\n', line)
        .await?;
    if line.len() > MAX_LINE {
        return Err(QmpError::Protocol(format!(
            "line longer than {MAX_LINE} bytes"
        )));
    }
    Ok(n > 0)
}

async fn read_loop(
    mut reader: BufReader<OwnedReadHalf>,
    pending: Arc<Pending>,
    events: mpsc::UnboundedSender<QmpEvent>,
    closed: watch::Sender<bool>,
) {
    let mut line = Vec::new();
    loop {
        match read_line(&mut reader, &mut line).await {
            Ok(true) => dispatch(&line, &pending, &events),
            Ok(false) => {
                debug!("QMP connection closed by QEMU");
                break;
            }
            Err(error) => {
                warn!(%error, "QMP read failed; dropping the connection");
                break;
            }
        }
    }
    // Flagged first, so a caller who sees `Closed` also sees `is_closed()`.
    closed.send_replace(true);
    // Dropping the senders fails every waiting call with `Closed`.
    lock(&pending).take();
}

fn dispatch(line: &[u8], pending: &Pending, events: &mpsc::UnboundedSender<QmpEvent>) {
    if line.iter().all(u8::is_ascii_whitespace) {
        return;
    }
    let mut msg: Value = match serde_json::from_slice(line) {
        Ok(msg) => msg,
        Err(error) => {
            // Framing is by line, so the next message is still readable.
            warn!(%error, line = %String::from_utf8_lossy(line), "malformed QMP message ignored");
            return;
        }
    };
    if let Some(id) = msg.get("id") {
        let waiter = id
            .as_u64()
            .and_then(|id| lock(pending).as_mut()?.remove(&id));
        match waiter {
            // The caller may have given up in the meantime; that is fine.
            Some(waiter) => {
                let _ = waiter.send(msg);
            }
            None => debug!(%msg, "QMP reply nobody waits for (timed out?) ignored"),
        }
    } else if let Some(event) = msg.get("event").and_then(Value::as_str).map(str::to_owned) {
        let data = msg.get_mut("data").map_or(Value::Null, Value::take);
        // Nobody listening for events is a legitimate choice of the caller.
        let _ = events.send(QmpEvent { event, data });
    } else {
        debug!(%msg, "unexpected QMP message ignored");
    }
}

fn into_result(command: &str, mut reply: Value) -> Result<Value, QmpError> {
    if let Some(value) = reply.get_mut("return") {
        return Ok(value.take());
    }
    if let Some(error) = reply.get("error") {
        let field = |key| {
            error
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        return Err(QmpError::Command {
            command: command.to_owned(),
            class: field("class"),
            desc: field("desc"),
        });
    }
    Err(QmpError::Protocol(format!(
        "reply to {command} has neither return nor error: {reply}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::path::PathBuf;
    use tempfile::TempDir;
    use tokio::io::Lines;
    use tokio::net::UnixListener;

    /// Upper bound on any test, so a bug shows up as a failure, not a hang.
    const BOUND: Duration = Duration::from_secs(5);
    /// For the tests that expect a timeout; ample for a local handshake.
    const SHORT: Duration = Duration::from_millis(250);

    async fn bounded<F: Future>(fut: F) -> F::Output {
        tokio::time::timeout(BOUND, fut).await.expect("test hung")
    }

    fn socket() -> (TempDir, PathBuf, UnixListener) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("qmp.sock");
        let listener = UnixListener::bind(&path).unwrap();
        (dir, path, listener)
    }

    /// QEMU's end of a connection.
    struct Peer {
        lines: Lines<BufReader<OwnedReadHalf>>,
        write: OwnedWriteHalf,
    }

    impl Peer {
        async fn accept(listener: &UnixListener) -> Peer {
            let (read, write) = listener.accept().await.unwrap().0.into_split();
            let lines = BufReader::new(read).lines();
            Peer { lines, write }
        }

        async fn handshake(listener: &UnixListener) -> Peer {
            let mut peer = Peer::accept(listener).await;
            let version = json!({"qemu": {"major": 9, "minor": 2, "micro": 0}, "package": ""});
            peer.send(json!({"QMP": {"version": version, "capabilities": ["oob"]}}))
                .await;
            let caps = peer.recv().await;
            assert_eq!(caps["execute"], "qmp_capabilities");
            assert!(caps.get("arguments").is_none());
            peer.reply(&caps, json!({})).await;
            peer
        }

        async fn send(&mut self, msg: Value) {
            self.write
                .write_all(format!("{msg}\n").as_bytes())
                .await
                .unwrap();
        }

        async fn recv(&mut self) -> Value {
            let line = self
                .lines
                .next_line()
                .await
                .unwrap()
                .expect("client hung up");
            serde_json::from_str(&line).unwrap()
        }

        async fn reply(&mut self, command: &Value, value: Value) {
            assert!(command["id"].is_u64(), "ids must be numbers: {command}");
            self.send(json!({"return": value, "id": command["id"]}))
                .await;
        }
    }

    #[tokio::test]
    async fn handshake_then_command_returns_its_value() {
        let (_dir, path, listener) = socket();
        let server = tokio::spawn(async move {
            let mut peer = Peer::handshake(&listener).await;
            let cmd = peer.recv().await;
            assert_eq!(cmd["execute"], "query-status");
            assert!(cmd.get("arguments").is_none());
            peer.reply(&cmd, json!({"status": "running", "running": true}))
                .await;
            let cmd = peer.recv().await;
            assert_eq!(cmd["arguments"], json!({"device": "ide0"}));
            peer.reply(&cmd, json!({})).await;
        });
        bounded(async {
            let (qmp, _events) = Qmp::connect(&path, BOUND).await.unwrap();
            let status = qmp.execute("query-status", None).await.unwrap();
            assert_eq!(status, json!({"status": "running", "running": true}));
            let args = Some(json!({"device": "ide0"}));
            assert_eq!(qmp.execute("eject", args).await.unwrap(), json!({}));
            server.await.unwrap();
        })
        .await;
    }

    #[tokio::test]
    async fn error_reply_is_a_command_error() {
        let (_dir, path, listener) = socket();
        tokio::spawn(async move {
            let mut peer = Peer::handshake(&listener).await;
            let cmd = peer.recv().await;
            let error = json!({"class": "DeviceNotFound", "desc": "Device 'x' not found"});
            peer.send(json!({"error": error, "id": cmd["id"]})).await;
        });
        bounded(async {
            let (qmp, _events) = Qmp::connect(&path, BOUND).await.unwrap();
            let result = qmp.execute("device_del", Some(json!({"id": "x"}))).await;
            let Err(err @ QmpError::Command { .. }) = result else {
                panic!("expected a command error, got {result:?}");
            };
            let text = "QEMU refused device_del: DeviceNotFound: Device 'x' not found";
            assert_eq!(err.to_string(), text);
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_calls_are_matched_by_id() {
        let (_dir, path, listener) = socket();
        tokio::spawn(async move {
            let mut peer = Peer::handshake(&listener).await;
            let (first, second) = (peer.recv().await, peer.recv().await);
            peer.reply(&second, second["execute"].clone()).await;
            peer.reply(&first, first["execute"].clone()).await;
        });
        bounded(async {
            let (qmp, _events) = Qmp::connect(&path, BOUND).await.unwrap();
            // Separate tasks on a multi-threaded runtime, as a caller would.
            let call = |command: &'static str| {
                let qmp = qmp.clone();
                tokio::spawn(async move { qmp.execute(command, None).await })
            };
            let (a, b) = (call("a"), call("b"));
            assert_eq!(a.await.unwrap().unwrap(), json!("a"));
            assert_eq!(b.await.unwrap().unwrap(), json!("b"));
        })
        .await;
    }

    #[tokio::test]
    async fn events_between_replies_reach_the_receiver() {
        let (_dir, path, listener) = socket();
        tokio::spawn(async move {
            let mut peer = Peer::handshake(&listener).await;
            let ts = json!({"seconds": 1_700_000_000, "microseconds": 5});
            let data = json!({"guest": false, "reason": "host-qmp-quit"});
            peer.send(json!({"timestamp": ts, "event": "SHUTDOWN", "data": data}))
                .await;
            let cmd = peer.recv().await;
            peer.send(json!({"timestamp": ts, "event": "STOP"})).await;
            peer.reply(&cmd, json!({})).await;
        });
        bounded(async {
            let (qmp, mut events) = Qmp::connect(&path, BOUND).await.unwrap();
            qmp.execute("quit", None).await.unwrap();
            let shutdown = events.recv().await.unwrap();
            assert_eq!(shutdown.event, "SHUTDOWN");
            assert_eq!(
                shutdown.data,
                json!({"guest": false, "reason": "host-qmp-quit"})
            );
            let stop = events.recv().await.unwrap();
            assert_eq!((stop.event.as_str(), stop.data), ("STOP", Value::Null));
        })
        .await;
    }

    #[tokio::test]
    async fn connect_times_out_without_greeting() {
        let (_dir, path, listener) = socket();
        bounded(async {
            let (client, accepted) = tokio::join!(Qmp::connect(&path, SHORT), listener.accept());
            let _silent = accepted.unwrap();
            let Err(err @ QmpError::Timeout { .. }) = client else {
                panic!("expected a timeout, got {client:?}");
            };
            assert_eq!(err.to_string(), "QMP: no answer to greeting within 250ms");
        })
        .await;
    }

    #[tokio::test]
    async fn unanswered_command_times_out_and_the_connection_survives() {
        let (_dir, path, listener) = socket();
        tokio::spawn(async move {
            let mut peer = Peer::handshake(&listener).await;
            let (slow, fast) = (peer.recv().await, peer.recv().await);
            // Too late: must be ignored, not mistaken for the answer to `fast`.
            peer.reply(&slow, json!("slow")).await;
            peer.reply(&fast, json!("fast")).await;
        });
        bounded(async {
            let (qmp, _events) = Qmp::connect(&path, SHORT).await.unwrap();
            let result = qmp.execute("slow", None).await;
            assert!(matches!(&result, Err(QmpError::Timeout { what, .. }) if what == "slow"));
            assert!(lock(&qmp.inner.pending).as_ref().unwrap().is_empty());
            assert_eq!(qmp.execute("fast", None).await.unwrap(), json!("fast"));
        })
        .await;
    }

    #[tokio::test]
    async fn server_hangup_fails_pending_calls_and_ends_events() {
        let (_dir, path, listener) = socket();
        tokio::spawn(async move {
            let mut peer = Peer::handshake(&listener).await;
            peer.recv().await;
            // Dropping the peer closes the socket with the command unanswered.
        });
        bounded(async {
            let (qmp, mut events) = Qmp::connect(&path, BOUND).await.unwrap();
            assert!(!qmp.is_closed());
            assert!(matches!(
                qmp.execute("query-status", None).await,
                Err(QmpError::Closed)
            ));
            qmp.closed().await;
            assert!(qmp.is_closed());
            assert_eq!(events.recv().await, None);
            assert!(matches!(
                qmp.execute("query-status", None).await,
                Err(QmpError::Closed)
            ));
        })
        .await;
    }

    #[tokio::test]
    async fn dropping_every_clone_closes_the_socket() {
        let (_dir, path, listener) = socket();
        let server = tokio::spawn(async move {
            let mut peer = Peer::handshake(&listener).await;
            let eof = peer.lines.next_line().await.unwrap();
            (eof, peer)
        });
        bounded(async {
            let (qmp, mut events) = Qmp::connect(&path, BOUND).await.unwrap();
            let clone = qmp.clone();
            drop(qmp);
            drop(clone);
            let (eof, _still_open) = server.await.unwrap();
            assert_eq!(eof, None, "the server should see end of stream");
            // The server keeps its end open, so only our reader task going
            // away can end the events.
            assert_eq!(events.recv().await, None);
        })
        .await;
    }

    #[tokio::test]
    async fn missing_socket_is_a_connect_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent.sock");
        match bounded(Qmp::connect(&path, SHORT)).await {
            Err(QmpError::Connect { path: p, source }) => {
                assert_eq!(p, path.display().to_string());
                assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
            }
            other => panic!("expected a connect error, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn bad_greetings_are_protocol_errors() {
        let oversized = vec![b'x'; MAX_LINE + 1];
        let greetings: [&[u8]; 3] = [b"garbage\n", b"{\"return\": {}}\n", &oversized];
        for greeting in greetings {
            let (_dir, path, listener) = socket();
            let greeting = greeting.to_vec();
            tokio::spawn(async move {
                let mut peer = Peer::accept(&listener).await;
                // The client may hang up before reading it all; that is the point.
                let _ = peer.write.write_all(&greeting).await;
            });
            let result = bounded(Qmp::connect(&path, BOUND)).await;
            assert!(matches!(result, Err(QmpError::Protocol(_))), "{result:?}");
        }
    }
}
