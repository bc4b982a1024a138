//! The notary: stored files, and proofs of them that anyone can check
//! without trusting the server.
//!
//! A file's SHA-256 is the data of one leaf of an append-only Merkle log
//! (RFC 9162 hashing). Pending hashes are appended in batches; each batch
//! ends in a tree head signed with the notary's Ed25519 key, stored with
//! the proof that it extends the head before it. A certificate is the
//! leaf's inclusion proof to the latest signed head.

use crate::access::OpCtx;
use crate::App;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};
use nephele_auth::Permission;
use nephele_common::ids::{OrganizationId, StoredFileId};
use nephele_common::names::FILE_NAME_MAX;
use nephele_common::page::{Page, PageRequest};
use nephele_common::{Error, ErrorCode, Result};
use nephele_notary::certificate::{
    Certificate, NotaryKey, NotarySigner, SignedTreeHead, ALGORITHM,
};
use nephele_notary::merkle::{self, Hash};
use nephele_store::notary::{
    Content, NewStoredFile, NotaryKeyRecord, PendingFile, StoredFile, StoredFileFilter, TreeHead,
};
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

const TYPE: &str = "stored-files";
/// Content on disk without a record is removed at start once this old.
const ORPHAN_AGE: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone)]
pub struct NotaryConfig {
    /// Where contents live: `files/ID`, and `incoming/` while uploading.
    pub dir: PathBuf,
    /// The largest file accepted.
    pub max_file_bytes: u64,
    /// Pending hashes are notarized at least this often…
    pub batch_interval: Duration,
    /// …and as soon as this many are pending.
    pub batch_size: usize,
}

/// Verifications without an account from one address, a minute: each
/// hashes what it is sent, a cost anyone could otherwise impose at will.
pub const ANONYMOUS_VERIFICATIONS_PER_MINUTE: u32 = 30;

/// Addresses the anonymous limiter forgets idle ones past.
const TRACKED_ADDRESSES: usize = 10_000;

/// The anonymous verifications' limiter, by client address.
pub(crate) struct AnonymousVerifications(governor::DefaultKeyedRateLimiter<IpAddr>);

impl Default for AnonymousVerifications {
    fn default() -> Self {
        let rate = NonZeroU32::new(ANONYMOUS_VERIFICATIONS_PER_MINUTE).unwrap_or(NonZeroU32::MIN);
        AnonymousVerifications(governor::RateLimiter::keyed(governor::Quota::per_minute(
            rate,
        )))
    }
}

impl std::fmt::Debug for AnonymousVerifications {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnonymousVerifications")
            .field("addresses", &self.0.len())
            .finish()
    }
}

/// The notary's state in memory.
#[derive(Debug, Default)]
pub(crate) struct Notary {
    anonymous: AnonymousVerifications,
    signer: tokio::sync::OnceCell<Arc<NotarySigner>>,
    /// The log's leaf hashes as far as this node has read them.
    leaves: tokio::sync::Mutex<Vec<Hash>>,
    /// Woken by uploads so a full batch need not wait for the interval.
    uploads: Arc<tokio::sync::Notify>,
    since_batch: std::sync::atomic::AtomicUsize,
}

/// What `verify` found.
#[derive(Debug, Clone)]
pub struct Verification {
    pub sha256: String,
    /// The caller's notarized files with this content, oldest first; none
    /// for an anonymous caller, who learns only whether and when.
    pub files: Vec<StoredFile>,
    /// When the content was first notarized (for the caller: among its
    /// organization's files).
    pub notarized_at: Option<DateTime<Utc>>,
    pub certificate: Option<Certificate>,
}

/// A signed tree head as the log keeps it, with its consistency proof.
#[derive(Debug, Clone)]
pub struct LoggedTreeHead {
    pub head: SignedTreeHead,
    pub previous_size: u64,
    pub consistency_proof: Vec<String>,
}

fn sha256_digest(s: &str) -> std::result::Result<Hash, String> {
    let bytes = hex::decode(s)
        .ok()
        .filter(|b| b.len() == 32)
        .ok_or_else(|| "must be 64 hexadecimal digits (a SHA-256)".to_owned())?;
    let mut hash = [0u8; 32];
    hash.copy_from_slice(&bytes);
    Ok(hash)
}

fn parse_sha256(field: &str, s: &str) -> Result<Hash> {
    sha256_digest(s).map_err(|reason| Error::invalid(field, reason))
}

fn hash_of(hex_text: &str) -> Result<Hash> {
    sha256_digest(hex_text)
        .map_err(|_| Error::internal(format!("corrupt hash in the log: {hex_text:?}")))
}

fn file_name(name: String) -> std::result::Result<String, String> {
    if name.trim().is_empty()
        || name.chars().count() > FILE_NAME_MAX
        || name.chars().any(nephele_common::names::is_hidden)
    {
        return Err(format!(
            "must be 1 to {FILE_NAME_MAX} characters without control or invisible formatting characters"
        ));
    }
    Ok(name)
}

/// Counts a received chunk into `size`: a body past the notary's file
/// limit is refused as it streams, whatever it declared.
fn add_within(size: &mut u64, chunk: &[u8], limit: u64) -> Result<()> {
    *size += chunk.len() as u64;
    if *size > limit {
        return Err(file_too_large(limit));
    }
    Ok(())
}

fn file_too_large(limit: u64) -> Error {
    Error::new(
        ErrorCode::PayloadTooLarge,
        format!("The file is larger than the limit of {limit} bytes"),
    )
    .with("limit", limit)
}

/// An upload's claimed name and SHA-256, parsed. A file given no name is
/// named by its SHA-256 (hex).
pub fn check_upload_claims(
    name: Option<&str>,
    expected: Option<&str>,
) -> Result<(Option<String>, Option<Hash>)> {
    let name = name
        .map(|n| file_name(n.to_owned()).map_err(|r| Error::invalid("name", r)))
        .transpose()?;
    let expected = expected.map(|e| parse_sha256("sha256", e)).transpose()?;
    Ok((name, expected))
}

/// Content received for an upload and not yet stored: removed from disk
/// when dropped, unless storing it moved it away.
#[derive(Debug)]
pub struct ReceivedContent {
    id: StoredFileId,
    org: OrganizationId,
    incoming: PathBuf,
    digest: Hash,
    size: u64,
}

impl Drop for ReceivedContent {
    fn drop(&mut self) {
        // After a successful rename there is nothing here to remove.
        let _ = std::fs::remove_file(&self.incoming);
    }
}

fn broken_upload(e: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorCode::Malformed,
        format!("The upload broke off before its end: {e}"),
    )
}

fn head_of(row: &TreeHead) -> Result<SignedTreeHead> {
    Ok(SignedTreeHead {
        tree_size: u64::try_from(row.tree_size)
            .map_err(|_| Error::internal("negative tree size"))?,
        root_hash: row.root_hash.clone(),
        timestamp: row.signed_at,
        key_id: row.key_id.clone(),
        algorithm: ALGORITHM.to_owned(),
        signature: row.signature.clone(),
    })
}

impl App {
    pub(crate) fn notary(&self) -> &Notary {
        &self.inner.notary
    }

    fn notary_config(&self) -> &NotaryConfig {
        &self.config().notary
    }

    /// Removes what interrupted uploads left, and starts the batcher.
    pub(crate) async fn start_notary(&self) -> Result<()> {
        let incoming = self.notary_config().dir.join("incoming");
        let _ = tokio::fs::remove_dir_all(&incoming).await;
        for dir in [incoming, self.notary_config().dir.join("files")] {
            tokio::fs::create_dir_all(&dir)
                .await
                .map_err(|e| Error::internal(format!("creating {}: {e}", dir.display())))?;
        }
        // The key is loaded, and the first batch cut, when there is work:
        // an idle server touches none of it. The sweep of orphaned
        // contents reads every record with content, so it runs beside
        // serving, not before it.
        let weak = Arc::downgrade(&self.inner);
        let uploads = self.notary().uploads.clone();
        let interval = self.notary_config().batch_interval;
        let app = self.clone();
        tokio::spawn(async move {
            if let Err(e) = app.remove_orphaned_contents().await {
                tracing::warn!(error = %e, "cannot sweep orphaned notary contents");
            }
            drop(app);
            loop {
                let _ = tokio::time::timeout(interval, uploads.notified()).await;
                let Some(inner) = weak.upgrade() else { break };
                if let Err(e) = (App { inner }).notarize_pending().await {
                    tracing::warn!(error = %e, "notary batch failed; retrying");
                }
            }
        });
        Ok(())
    }

    /// Removes contents that no record names: a crash between moving an
    /// upload into place and recording it. Only those older than
    /// [`ORPHAN_AGE`], as nodes sharing the directory may be mid-upload.
    async fn remove_orphaned_contents(&self) -> Result<()> {
        let dir = self.notary_config().dir.join("files");
        let kept: std::collections::HashSet<String> = self
            .store()
            .stored_content_ids()
            .await?
            .into_iter()
            .collect();
        let mut entries = tokio::fs::read_dir(&dir)
            .await
            .map_err(|e| Error::internal(format!("reading {}: {e}", dir.display())))?;
        while let Ok(Some(entry)) = entries.next_entry().await {
            let name = entry.file_name().to_string_lossy().into_owned();
            let old = entry
                .metadata()
                .await
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > ORPHAN_AGE);
            if old && !kept.contains(&name) {
                tracing::warn!(file = %entry.path().display(), "removing stored content no record names");
                let _ = tokio::fs::remove_file(entry.path()).await;
            }
        }
        Ok(())
    }

    /// The notary's key: the oldest in the database, made on first use.
    async fn notary_signer(&self) -> Result<Arc<NotarySigner>> {
        self.notary()
            .signer
            .get_or_try_init(|| async {
                if self.store().notary_keys().await?.is_empty() {
                    let id = uuid::Uuid::now_v7().to_string();
                    let (_, der) = NotarySigner::generate(&id).map_err(Error::internal)?;
                    let sealed = self
                        .inner
                        .record_sealer
                        .seal(&der, &format!("notary-key:{id}"))?;
                    let signer = NotarySigner::from_pkcs8(&id, &der).map_err(Error::internal)?;
                    self.store()
                        .insert_notary_key(&NotaryKeyRecord {
                            id: id.clone(),
                            algorithm: ALGORITHM.to_owned(),
                            public_key: signer.key().public_key,
                            private_key: sealed,
                            created_at: self.clock().now(),
                        })
                        .await?;
                    tracing::info!(kid = %id, "made the notary's signing key");
                }
                // Nodes that raced each made one; all use the oldest.
                let keys = self.store().notary_keys().await?;
                let first = keys
                    .first()
                    .ok_or_else(|| Error::internal("no notary key"))?;
                let der = self
                    .inner
                    .record_sealer
                    .open(&first.private_key, &format!("notary-key:{}", first.id))?;
                NotarySigner::from_pkcs8(&first.id, &der)
                    .map(Arc::new)
                    .map_err(Error::internal)
            })
            .await
            .cloned()
    }

    /// The log's leaf hashes, at least its first `size` (its whole size
    /// as of now when `None`), read from the database as far as this node
    /// has not read them yet. Holding them keeps this node's batches one
    /// at a time.
    async fn leaves(&self, size: Option<u64>) -> Result<tokio::sync::MutexGuard<'_, Vec<Hash>>> {
        let mut leaves = self.notary().leaves.lock().await;
        let size = match size {
            Some(size) => size,
            None => self
                .store()
                .latest_tree_head()
                .await?
                .map_or(0, |h| h.tree_size as u64),
        };
        let have = leaves.len() as u64;
        if have < size {
            for hex_text in self.store().leaf_sha256s(have as i64, size as i64).await? {
                leaves.push(merkle::leaf_hash(&hash_of(&hex_text)?));
            }
            if (leaves.len() as u64) < size {
                return Err(Error::internal("the log has fewer leaves than its head"));
            }
        }
        Ok(leaves)
    }

    /// Appends every pending hash to the log, in batches of at most
    /// `batch_size`, each under a new signed head; the log's size after.
    pub async fn notarize_pending(&self) -> Result<Option<u64>> {
        self.notary()
            .since_batch
            .store(0, std::sync::atomic::Ordering::Relaxed);
        let limit = self.notary_config().batch_size.max(1);
        let mut size = None;
        loop {
            let Some((tree_size, added)) = self.notarize_batch(limit).await? else {
                return Ok(size);
            };
            size = Some(tree_size);
            if added < limit as u64 {
                return Ok(size);
            }
        }
    }

    /// One batch: its head's tree size and how many leaves it added.
    async fn notarize_batch(&self, limit: usize) -> Result<Option<(u64, u64)>> {
        let signer = self.notary_signer().await?;
        let mut leaves = self.leaves(None).await?;
        let known = leaves.len();
        let now = self.clock().now();
        let head = self
            .store()
            .notarize(limit as i64, |current, pending: &[PendingFile]| {
                let old_size = current.map_or(0, |h| h.tree_size as u64);
                // Another node appended since: its leaves are not here yet.
                if old_size != known as u64 {
                    return Err(Error::unavailable(
                        "the log moved on; the next batch catches up",
                    ));
                }
                for f in pending {
                    leaves.push(merkle::leaf_hash(&hash_of(&f.sha256)?));
                }
                let root = merkle::root(&leaves);
                let signed = signer.sign_tree_head(leaves.len() as u64, now, &root);
                let proof = merkle::consistency_proof(&leaves, old_size)
                    .ok_or_else(|| Error::internal("no consistency proof"))?;
                Ok(TreeHead {
                    tree_size: leaves.len() as i64,
                    root_hash: signed.root_hash,
                    signed_at: signed.timestamp,
                    key_id: signed.key_id,
                    signature: signed.signature,
                    previous_size: old_size as i64,
                    consistency_proof: proof.iter().map(hex::encode).collect(),
                })
            })
            .await;
        // Leaves of a batch that did not commit are not the log's.
        if !matches!(head, Ok(Some(_))) {
            leaves.truncate(known);
        }
        let Some(head) = head? else {
            return Ok(None);
        };
        let added = (head.tree_size - head.previous_size) as u64;
        tracing::info!(tree_size = head.tree_size, added, "notarized a batch");
        Ok(Some((head.tree_size as u64, added)))
    }

    async fn visible_file(
        &self,
        ctx: &OpCtx,
        id: StoredFileId,
        permission: Permission,
    ) -> Result<StoredFile> {
        let file = self
            .store()
            .stored_file(id)
            .await?
            .ok_or_else(|| Error::not_found(TYPE, id))?;
        self.authorize_object(ctx, file.organization_id, permission, TYPE, &id)
            .await?;
        Ok(file)
    }

    fn content_path(&self, id: StoredFileId) -> PathBuf {
        self.notary_config().dir.join("files").join(id.to_string())
    }

    /// A new record of the caller's, made now.
    fn new_file(
        &self,
        ctx: &OpCtx,
        org: OrganizationId,
        id: StoredFileId,
        name: String,
        sha256: String,
    ) -> NewStoredFile {
        NewStoredFile {
            id,
            organization_id: org,
            owner_type: ctx.actor.principal.kind(),
            owner_id: ctx.actor.principal.to_string(),
            name,
            sha256,
            size_bytes: None,
            content: Content::None,
            now: self.clock().now(),
        }
    }

    async fn record_file(&self, new: NewStoredFile) -> Result<StoredFile> {
        let file = self.store().insert_stored_file(&new).await?;
        let waiting = self
            .notary()
            .since_batch
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        if waiting >= self.notary_config().batch_size {
            self.notary().uploads.notify_one();
        }
        Ok(file)
    }

    /// Stores a file streamed in `body`: written to disk as it arrives
    /// and hashed on the way, never held whole in memory. It is listed
    /// only once all of it is on disk; `expected` (a SHA-256 the client
    /// sent) must match what arrived.
    pub async fn upload_stored_file<S, E>(
        &self,
        ctx: &OpCtx,
        acting: Option<OrganizationId>,
        name: Option<String>,
        expected: Option<String>,
        body: S,
    ) -> Result<StoredFile>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        // Refused before a byte is stored when the claims are bad already.
        check_upload_claims(name.as_deref(), expected.as_deref())?;
        let received = self.receive_stored_file(ctx, acting, body).await?;
        self.store_received_file(ctx, received, name, expected)
            .await
    }

    /// Refuses, before a byte is read, an upload whose declared length
    /// (`Content-Length`) cannot fit the file size limit: `framing` is
    /// what may surround the file (a multipart body's other parts).
    pub fn check_upload_length(&self, declared: Option<u64>, framing: u64) -> Result<()> {
        let limit = self.notary_config().max_file_bytes;
        match declared {
            Some(length) if length > limit.saturating_add(framing) => Err(file_too_large(limit)),
            _ => Ok(()),
        }
    }

    /// The first half of an upload whose claims may come after its
    /// content (a multipart `sha256` part after the `file` part): the
    /// content, on disk and hashed, but not yet a stored file. Dropped
    /// without [`App::store_received_file`], it is removed.
    pub async fn receive_stored_file<S, E>(
        &self,
        ctx: &OpCtx,
        acting: Option<OrganizationId>,
        body: S,
    ) -> Result<ReceivedContent>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        let org = self.acting_organization(ctx, acting);
        self.authorize(ctx, org, Permission::NotaryWrite).await?;
        let id = StoredFileId::new();
        let incoming = self
            .notary_config()
            .dir
            .join("incoming")
            .join(id.to_string());
        let mut received = ReceivedContent {
            id,
            org,
            incoming,
            digest: Hash::default(),
            size: 0,
        };
        (received.digest, received.size) = self.receive(&received.incoming, body).await?;
        Ok(received)
    }

    /// The second half: checks the name and the claimed SHA-256 against
    /// what arrived, then records the file. Nothing is recorded when
    /// either is refused.
    pub async fn store_received_file(
        &self,
        ctx: &OpCtx,
        received: ReceivedContent,
        name: Option<String>,
        expected: Option<String>,
    ) -> Result<StoredFile> {
        let (name, expected) = check_upload_claims(name.as_deref(), expected.as_deref())?;
        if let Some(expected) = expected {
            if expected != received.digest {
                return Err(Error::invalid(
                    "sha256",
                    format!(
                        "does not match the content sent, whose SHA-256 is {}",
                        hex::encode(received.digest)
                    ),
                ));
            }
        }
        let (id, org, size) = (received.id, received.org, received.size);
        let digest = hex::encode(received.digest);
        let path = self.content_path(id);
        tokio::fs::rename(&received.incoming, &path)
            .await
            .map_err(|e| Error::internal(format!("storing {}: {e}", path.display())))?;
        let recorded = self
            .record_file(NewStoredFile {
                size_bytes: Some(size as i64),
                content: Content::Stored,
                ..self.new_file(ctx, org, id, name.unwrap_or_else(|| digest.clone()), digest)
            })
            .await;
        if recorded.is_err() {
            let _ = tokio::fs::remove_file(&path).await;
        }
        recorded
    }

    /// Writes `body` to `path`, hashing it; refuses it past the size limit.
    async fn receive<S, E>(&self, path: &Path, body: S) -> Result<(Hash, u64)>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        let limit = self.notary_config().max_file_bytes;
        let mut file = tokio::fs::File::create(path)
            .await
            .map_err(|e| Error::internal(format!("creating {}: {e}", path.display())))?;
        let mut hasher = Sha256::new();
        let mut size: u64 = 0;
        let mut body = std::pin::pin!(body);
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(broken_upload)?;
            add_within(&mut size, &chunk, limit)?;
            hasher.update(&chunk);
            file.write_all(&chunk)
                .await
                .map_err(|e| Error::internal(format!("writing {}: {e}", path.display())))?;
        }
        file.sync_all()
            .await
            .map_err(|e| Error::internal(format!("writing {}: {e}", path.display())))?;
        Ok((hasher.finalize().into(), size))
    }

    /// Registers a hash without content.
    pub async fn register_hash(
        &self,
        ctx: &OpCtx,
        acting: Option<OrganizationId>,
        name: Option<String>,
        sha256: Option<String>,
    ) -> Result<StoredFile> {
        let org = self.acting_organization(ctx, acting);
        self.authorize(ctx, org, Permission::NotaryWrite).await?;
        let mut v = nephele_common::error::Validator::new();
        let name = name.and_then(|n| v.check("name", file_name(n)));
        let digest = v.require("sha256", sha256, |s| sha256_digest(&s));
        v.finish()?;
        let Some(digest) = digest else {
            return Err(Error::internal("validated fields missing"));
        };
        let digest = hex::encode(digest);
        let name = name.unwrap_or_else(|| digest.clone());
        self.record_file(self.new_file(ctx, org, StoredFileId::new(), name, digest))
            .await
    }

    pub async fn list_stored_files(
        &self,
        ctx: &OpCtx,
        acting: Option<OrganizationId>,
        sha256: Option<String>,
        name: Option<String>,
        page: &PageRequest,
    ) -> Result<Page<StoredFile>> {
        let org = self.acting_organization(ctx, acting);
        let sha256 = sha256
            .map(|s| parse_sha256("sha256", &s).map(hex::encode))
            .transpose()?;
        self.authorize(ctx, org, Permission::NotaryRead).await?;
        self.store()
            .list_stored_files(org, &StoredFileFilter { sha256, name }, page)
            .await
    }

    pub async fn get_stored_file(&self, ctx: &OpCtx, id: StoredFileId) -> Result<StoredFile> {
        self.visible_file(ctx, id, Permission::NotaryRead).await
    }

    /// The stored content's path, after checking it still has the hash
    /// that was notarized.
    pub async fn stored_file_content(
        &self,
        ctx: &OpCtx,
        id: StoredFileId,
    ) -> Result<(StoredFile, PathBuf)> {
        let file = self.visible_file(ctx, id, Permission::NotaryRead).await?;
        match file.content {
            Content::Stored => {}
            Content::None => {
                return Err(Error::wrong_state(
                    TYPE,
                    id,
                    "Only the hash of this file was registered; it has no content",
                )
                .with("currentState", "HashOnly")
                .with("expectedStates", vec!["Stored"]))
            }
            Content::Deleted => {
                return Err(
                    Error::wrong_state(TYPE, id, "This file's content was deleted")
                        .with("currentState", "Deleted")
                        .with("expectedStates", vec!["Stored"]),
                )
            }
        }
        let path = self.content_path(id);
        let reader = tokio::fs::File::open(&path)
            .await
            .map_err(|e| Error::internal(format!("opening {}: {e}", path.display())))?;
        let sha256 = self
            .hash_stream(tokio_util::io::ReaderStream::new(reader))
            .await
            .map_err(|e| Error::internal(format!("reading {}: {e}", path.display())))?;
        if sha256 != file.sha256 {
            tracing::error!(%id, path = %path.display(), "stored content no longer has its notarized hash");
            return Err(Error::internal(
                "the stored content no longer matches its notarized hash",
            ));
        }
        Ok((file, path))
    }

    /// Removes a file's content; its record and notarization stay.
    pub async fn delete_stored_file(&self, ctx: &OpCtx, id: StoredFileId) -> Result<()> {
        self.visible_file(ctx, id, Permission::NotaryWrite).await?;
        if self
            .store()
            .mark_content_deleted(id, self.clock().now())
            .await?
        {
            let path = self.content_path(id);
            if let Err(e) = tokio::fs::remove_file(&path).await {
                tracing::warn!(%id, error = %e, "cannot remove stored content");
            }
        }
        Ok(())
    }

    /// A notarized file and its certificate: its inclusion proof to the
    /// latest signed tree head.
    pub async fn certificate(
        &self,
        ctx: &OpCtx,
        id: StoredFileId,
    ) -> Result<(StoredFile, Certificate)> {
        let file = self.visible_file(ctx, id, Permission::NotaryRead).await?;
        let certificate = self.certificate_of(&file).await?;
        Ok((file, certificate))
    }

    async fn certificate_of(&self, file: &StoredFile) -> Result<Certificate> {
        let Some(index) = file.leaf_index else {
            return Err(Error::wrong_state(
                TYPE,
                file.id,
                "This file is not notarized yet; its batch is pending",
            )
            .with("currentState", "Pending")
            .with("expectedStates", vec!["Notarized"]));
        };
        let row = self
            .store()
            .latest_tree_head()
            .await?
            .ok_or_else(|| Error::internal("a notarized file and no tree head"))?;
        let head = head_of(&row)?;
        let leaves = self.leaves(Some(head.tree_size)).await?;
        nephele_notary::certificate::certificate(
            &leaves[..head.tree_size as usize],
            index as u64,
            &hash_of(&file.sha256)?,
            head,
        )
        .ok_or_else(|| Error::internal("no inclusion proof for a notarized file"))
    }

    /// Is this content (or hash) notarized among the caller's files?
    pub async fn verify_notarized(
        &self,
        ctx: Option<&OpCtx>,
        acting: Option<OrganizationId>,
        sha256: String,
    ) -> Result<Verification> {
        let digest = parse_sha256("sha256", &sha256)?;
        let sha256 = hex::encode(digest);
        // Anyone may check a proof (SPEC §7): without an account, the first
        // notarization of the content anywhere in the log, and nothing of
        // whose it is.
        let Some(ctx) = ctx else {
            let first = self.store().first_notarized(&sha256).await?;
            let certificate = match &first {
                Some(file) => Some(self.certificate_of(file).await?),
                None => None,
            };
            return Ok(Verification {
                sha256,
                files: Vec::new(),
                notarized_at: first.and_then(|f| f.notarized_at),
                certificate,
            });
        };
        let org = self.acting_organization(ctx, acting);
        self.authorize(ctx, org, Permission::NotaryRead).await?;
        let files: Vec<StoredFile> = self
            .store()
            .list_stored_files(
                org,
                &StoredFileFilter {
                    sha256: Some(sha256.clone()),
                    name: None,
                },
                &PageRequest {
                    limit: 100,
                    after: None,
                },
            )
            .await?
            .items
            .into_iter()
            .filter(|f| f.leaf_index.is_some())
            .collect();
        let certificate = match files.first() {
            Some(first) => Some(self.certificate_of(first).await?),
            None => None,
        };
        Ok(Verification {
            sha256,
            notarized_at: files.iter().filter_map(|f| f.notarized_at).min(),
            files,
            certificate,
        })
    }

    /// Hashes a body streamed for verification without keeping it; no
    /// larger than a file the notary stores.
    pub async fn hash_stream<S, E>(&self, body: S) -> Result<String>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        let limit = self.notary_config().max_file_bytes;
        let mut hasher = Sha256::new();
        let mut size: u64 = 0;
        let mut body = std::pin::pin!(body);
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(broken_upload)?;
            add_within(&mut size, &chunk, limit)?;
            hasher.update(&chunk);
        }
        Ok(hex::encode(hasher.finalize()))
    }

    /// Admits one verification without an account from `address`: past
    /// [`ANONYMOUS_VERIFICATIONS_PER_MINUTE`] it is 429 (3005) with
    /// `Retry-After`. With an account there is no such limit: the caller
    /// is known.
    pub fn admit_anonymous_verification(&self, address: Option<IpAddr>) -> Result<()> {
        let limiter = &self.notary().anonymous.0;
        if limiter.len() > TRACKED_ADDRESSES {
            limiter.retain_recent();
        }
        // No address (not over TCP) is one shared address.
        let key = address.unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        limiter.check_key(&key).map_err(|not_until| {
            use governor::clock::Clock;
            let wait = not_until.wait_time_from(limiter.clock().now());
            Error::new(
                ErrorCode::RateLimited,
                "Too many verifications without an account from this address; \
                 sign in, or try again later",
            )
            .with_retry_after(wait.as_secs().max(1))
        })
    }

    /// The keys tree heads are signed with (all of them, ever).
    /// Public (SPEC §7): anyone checking a certificate needs them.
    pub async fn notary_keys(&self) -> Result<Vec<NotaryKey>> {
        // Made on first use: asking for it is a use.
        self.notary_signer().await?;
        Ok(self
            .store()
            .notary_keys()
            .await?
            .into_iter()
            .map(|k| NotaryKey {
                key_id: k.id,
                algorithm: k.algorithm,
                public_key: k.public_key,
            })
            .collect())
    }

    /// The log's signed tree heads, oldest first, each with its
    /// consistency proof from the one before.
    /// Public (SPEC §7), like the keys.
    pub async fn tree_heads(&self, page: &PageRequest) -> Result<Page<LoggedTreeHead>> {
        let page = self.store().list_tree_heads(page).await?;
        let items = page
            .items
            .iter()
            .map(|row| {
                Ok(LoggedTreeHead {
                    head: head_of(row)?,
                    previous_size: row.previous_size as u64,
                    consistency_proof: row.consistency_proof.clone(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Page {
            items,
            next: page.next,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The OpenAPI schema's patterns for names and file names take exactly
    /// what the server's parsers take, over the Basic Multilingual Plane
    /// (where the patterns are written), alone and among other characters.
    #[test]
    fn the_schemas_patterns_take_what_the_parsers_take() {
        use nephele_api_types::schema::{file_name_pattern, name_pattern};
        use nephele_common::names::Name;
        let name = regex::Regex::new(&name_pattern()).unwrap();
        let file = regex::Regex::new(&file_name_pattern()).unwrap();
        for c in (0..=0xFFFF_u32).filter_map(char::from_u32) {
            for s in [
                c.to_string(),
                format!("a{c}"),
                format!("{c}a"),
                format!("a{c}b"),
            ] {
                let code = c as u32;
                assert_eq!(
                    name.is_match(&s),
                    Name::parse(&s).is_ok(),
                    "name {s:?} U+{code:04X}"
                );
                assert_eq!(
                    file.is_match(&s),
                    file_name(s.clone()).is_ok(),
                    "file {s:?} U+{code:04X}"
                );
            }
        }
    }

    #[test]
    fn hashes_are_64_hex_digits() {
        assert!(parse_sha256("sha256", &"ab".repeat(32)).is_ok());
        assert!(parse_sha256("sha256", &"AB".repeat(32)).is_ok());
        assert!(parse_sha256("sha256", "abc").is_err());
        assert!(parse_sha256("sha256", &"zz".repeat(32)).is_err());
        assert!(parse_sha256("sha256", &"ab".repeat(33)).is_err());
    }

    #[test]
    fn names_are_checked() {
        assert!(file_name("report.pdf".into()).is_ok());
        assert!(file_name(String::new()).is_err());
        assert!(file_name(" ".into()).is_err());
        assert!(file_name("a\u{7}b".into()).is_err());
        // With U+202E after "invoice", "invoice<RLO>fdp.exe" shows as "invoiceexe.pdf".
        assert!(file_name("invoice\u{202E}fdp.exe".into()).is_err());
        assert!(file_name("x".repeat(256)).is_err());
    }
}
