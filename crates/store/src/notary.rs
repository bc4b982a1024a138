//! The notary's records: stored files, the signed tree heads of the
//! Merkle log of their hashes, and the notary's keys.

use crate::db::{col, col_id, col_time, db_error, json_batch, lock_invariants, JsonType};
use crate::Store;
use chrono::{DateTime, Utc};
use nephele_common::clock::{from_micros, to_micros};
use nephele_common::ids::{OrganizationId, StoredFileId};
use nephele_common::page::{Page, PageRequest};
use nephele_common::{Error, Result};
use sqlx::any::AnyRow;

/// What became of a stored file's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    Stored,
    /// Only the hash was registered.
    None,
    /// Removed by `DELETE`; the record and its notarization stay.
    Deleted,
}

impl Content {
    pub fn as_str(self) -> &'static str {
        match self {
            Content::Stored => "stored",
            Content::None => "none",
            Content::Deleted => "deleted",
        }
    }

    fn parse(s: &str) -> Result<Content> {
        Ok(match s {
            "stored" => Content::Stored,
            "none" => Content::None,
            "deleted" => Content::Deleted,
            other => return Err(Error::internal(format!("corrupt content state {other:?}"))),
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct StoredFile {
    pub id: StoredFileId,
    pub organization_id: OrganizationId,
    pub owner_type: String,
    pub owner_id: String,
    pub name: String,
    /// Lower-case hex.
    pub sha256: String,
    pub size_bytes: Option<i64>,
    pub content: Content,
    /// Its place in the log, once notarized.
    pub leaf_index: Option<i64>,
    /// When the first tree head that holds it was signed.
    pub notarized_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

#[derive(Debug, Clone)]
pub struct NewStoredFile {
    pub id: StoredFileId,
    pub organization_id: OrganizationId,
    pub owner_type: &'static str,
    pub owner_id: String,
    pub name: String,
    pub sha256: String,
    pub size_bytes: Option<i64>,
    pub content: Content,
    pub now: DateTime<Utc>,
}

#[derive(Debug, Clone, Default)]
pub struct StoredFileFilter {
    pub sha256: Option<String>,
    pub name: Option<String>,
}

/// A signed tree head of the log, with the proof that it extends the
/// head before it (`previous_size`).
#[derive(Debug, Clone, PartialEq)]
pub struct TreeHead {
    pub tree_size: i64,
    /// Lower-case hex.
    pub root_hash: String,
    pub signed_at: DateTime<Utc>,
    pub key_id: String,
    /// Base64.
    pub signature: String,
    pub previous_size: i64,
    /// Hex hashes.
    pub consistency_proof: Vec<String>,
}

/// A notary signing key; `private_key` is sealed.
#[derive(Debug, Clone)]
pub struct NotaryKeyRecord {
    pub id: String,
    pub algorithm: String,
    pub public_key: String,
    pub private_key: String,
    pub created_at: DateTime<Utc>,
}

/// A file waiting for its batch.
#[derive(Debug, Clone)]
pub struct PendingFile {
    pub id: StoredFileId,
    pub sha256: String,
}

const FILE_COLUMNS: &str = "f.id, f.organization_id, f.owner_type, f.owner_id, f.name, f.sha256, \
     f.size_bytes, f.content, f.leaf_index, f.created_at, f.updated_at, f.version, \
     (SELECT h.signed_at FROM notary_tree_heads h WHERE h.tree_size > f.leaf_index \
      ORDER BY h.tree_size LIMIT 1) AS notarized_at";

fn file_from_row(r: &AnyRow) -> Result<StoredFile> {
    let notarized_at: Option<i64> = col(r, "notarized_at")?;
    Ok(StoredFile {
        id: col_id(r, "id")?,
        organization_id: col_id(r, "organization_id")?,
        owner_type: col(r, "owner_type")?,
        owner_id: col(r, "owner_id")?,
        name: col(r, "name")?,
        sha256: col(r, "sha256")?,
        size_bytes: col(r, "size_bytes")?,
        content: Content::parse(&col::<String>(r, "content")?)?,
        leaf_index: col(r, "leaf_index")?,
        notarized_at: notarized_at.map(from_micros),
        created_at: col_time(r, "created_at")?,
        updated_at: col_time(r, "updated_at")?,
        version: col(r, "version")?,
    })
}

const HEAD_COLUMNS: &str =
    "tree_size, root_hash, signed_at, key_id, signature, previous_size, consistency_proof";

fn head_from_row(r: &AnyRow) -> Result<TreeHead> {
    let proof: String = col(r, "consistency_proof")?;
    Ok(TreeHead {
        tree_size: col(r, "tree_size")?,
        root_hash: col(r, "root_hash")?,
        signed_at: col_time(r, "signed_at")?,
        key_id: col(r, "key_id")?,
        signature: col(r, "signature")?,
        previous_size: col(r, "previous_size")?,
        consistency_proof: serde_json::from_str(&proof)
            .map_err(|e| Error::internal(format!("corrupt consistency proof: {e}")))?,
    })
}

/// The newest tree head, read through a pool or inside a transaction.
async fn latest_head<'e, E>(executor: E) -> Result<Option<TreeHead>>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let row = sqlx::query(&format!(
        "SELECT {HEAD_COLUMNS} FROM notary_tree_heads ORDER BY tree_size DESC LIMIT 1"
    ))
    .fetch_optional(executor)
    .await
    .map_err(db_error)?;
    row.as_ref().map(head_from_row).transpose()
}

impl Store {
    pub async fn insert_stored_file(&self, new: &NewStoredFile) -> Result<StoredFile> {
        sqlx::query(
            "INSERT INTO notary_files (id, organization_id, owner_type, owner_id, name, sha256, \
             size_bytes, content, leaf_index, created_at, updated_at, version) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, $9, $9, 1)",
        )
        .bind(new.id.to_string())
        .bind(new.organization_id.to_string())
        .bind(new.owner_type)
        .bind(&new.owner_id)
        .bind(&new.name)
        .bind(&new.sha256)
        .bind(new.size_bytes)
        .bind(new.content.as_str())
        .bind(to_micros(new.now))
        .execute(&self.write)
        .await
        .map_err(db_error)?;
        Ok(StoredFile {
            id: new.id,
            organization_id: new.organization_id,
            owner_type: new.owner_type.to_owned(),
            owner_id: new.owner_id.clone(),
            name: new.name.clone(),
            sha256: new.sha256.clone(),
            size_bytes: new.size_bytes,
            content: new.content,
            leaf_index: None,
            notarized_at: None,
            created_at: new.now,
            updated_at: new.now,
            version: 1,
        })
    }

    pub async fn stored_file(&self, id: StoredFileId) -> Result<Option<StoredFile>> {
        let row = sqlx::query(&format!(
            "SELECT {FILE_COLUMNS} FROM notary_files f WHERE f.id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.read)
        .await
        .map_err(db_error)?;
        row.as_ref().map(file_from_row).transpose()
    }

    /// The first notarized stored file with this content, whosever it is.
    pub async fn first_notarized(&self, sha256: &str) -> Result<Option<StoredFile>> {
        let row = sqlx::query(&format!(
            "SELECT {FILE_COLUMNS} FROM notary_files f WHERE f.sha256 = $1 \
             AND f.leaf_index IS NOT NULL ORDER BY f.leaf_index LIMIT 1"
        ))
        .bind(sha256)
        .fetch_optional(&self.read)
        .await
        .map_err(db_error)?;
        row.as_ref().map(file_from_row).transpose()
    }

    /// An organization's stored files by id, filtered.
    pub async fn list_stored_files(
        &self,
        org: OrganizationId,
        filter: &StoredFileFilter,
        page: &PageRequest,
    ) -> Result<Page<StoredFile>> {
        let rows = sqlx::query(&format!(
            "SELECT {FILE_COLUMNS} FROM notary_files f WHERE f.organization_id = $1 \
             AND ($2 IS NULL OR f.sha256 = $2) AND ($3 IS NULL OR f.name = $3) \
             AND ($4 IS NULL OR f.id > $4) ORDER BY f.id LIMIT $5"
        ))
        .bind(org.to_string())
        .bind(filter.sha256.clone())
        .bind(filter.name.clone())
        .bind(page.after.clone())
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&self.read)
        .await
        .map_err(db_error)?;
        let items = rows.iter().map(file_from_row).collect::<Result<Vec<_>>>()?;
        Ok(Page::from_rows(items, page.limit, |f| f.id.to_string()))
    }

    /// Marks a stored file's content removed; false when it had none.
    pub async fn mark_content_deleted(&self, id: StoredFileId, now: DateTime<Utc>) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE notary_files SET content = 'deleted', updated_at = $1, version = version + 1 \
             WHERE id = $2 AND content = 'stored'",
        )
        .bind(to_micros(now))
        .bind(id.to_string())
        .execute(&self.write)
        .await
        .map_err(db_error)?;
        Ok(done.rows_affected() == 1)
    }

    /// The ids of every stored file whose content is kept (to find files
    /// on disk that no record names).
    pub async fn stored_content_ids(&self) -> Result<Vec<String>> {
        sqlx::query_scalar("SELECT id FROM notary_files WHERE content = 'stored'")
            .fetch_all(&self.read)
            .await
            .map_err(db_error)
    }

    pub async fn latest_tree_head(&self) -> Result<Option<TreeHead>> {
        latest_head(&self.read).await
    }

    /// Every tree head by size, oldest first.
    pub async fn list_tree_heads(&self, page: &PageRequest) -> Result<Page<TreeHead>> {
        let after: Option<i64> = match &page.after {
            Some(a) => Some(
                a.parse()
                    .map_err(|_| Error::invalid("pageToken", "is not a page of tree heads"))?,
            ),
            None => None,
        };
        let rows = sqlx::query(&format!(
            "SELECT {HEAD_COLUMNS} FROM notary_tree_heads WHERE ($1 IS NULL OR tree_size > $1) \
             ORDER BY tree_size LIMIT $2"
        ))
        .bind(after)
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&self.read)
        .await
        .map_err(db_error)?;
        let items = rows.iter().map(head_from_row).collect::<Result<Vec<_>>>()?;
        Ok(Page::from_rows(items, page.limit, |h| {
            h.tree_size.to_string()
        }))
    }

    /// The hashes of the log's leaves `from..to`, in order.
    pub async fn leaf_sha256s(&self, from: i64, to: i64) -> Result<Vec<String>> {
        sqlx::query_scalar(
            "SELECT sha256 FROM notary_files WHERE leaf_index >= $1 AND leaf_index < $2 \
             ORDER BY leaf_index",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.read)
        .await
        .map_err(db_error)
    }

    /// Notarizes up to `limit` pending files in one transaction: `seal`
    /// gets the current head and the pending files in log order, and
    /// returns the head that appends them; the files get their leaf
    /// indexes and the head is stored, or nothing is. `None` when nothing
    /// was pending. One batch at a time, on every node.
    pub async fn notarize<F>(&self, limit: i64, seal: F) -> Result<Option<TreeHead>>
    where
        F: FnOnce(Option<&TreeHead>, &[PendingFile]) -> Result<TreeHead> + Send,
    {
        let mut tx = self.write.begin().await.map_err(db_error)?;
        lock_invariants(self, &mut tx).await?;
        let current = latest_head(&mut *tx).await?;
        let pending: Vec<PendingFile> = sqlx::query(
            "SELECT id, sha256 FROM notary_files WHERE leaf_index IS NULL \
             ORDER BY created_at, id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_error)?
        .iter()
        .map(|r| {
            Ok(PendingFile {
                id: col_id(r, "id")?,
                sha256: col(r, "sha256")?,
            })
        })
        .collect::<Result<_>>()?;
        if pending.is_empty() {
            return Ok(None);
        }
        let head = seal(current.as_ref(), &pending)?;
        let first = current.as_ref().map_or(0, |h| h.tree_size);
        let rows: Vec<_> = pending
            .iter()
            .enumerate()
            .map(|(i, f)| serde_json::json!({"id": f.id.to_string(), "leaf": first + i as i64}))
            .collect();
        let rows = json_batch(&rows);
        let j = self.json_rows("j", &[("id", JsonType::Text), ("leaf", JsonType::Integer)]);
        sqlx::query(&format!(
            "UPDATE notary_files SET leaf_index = j.leaf FROM {j} WHERE notary_files.id = j.id"
        ))
        .bind(&rows)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        let proof = serde_json::to_string(&head.consistency_proof)
            .map_err(|e| Error::internal(format!("consistency proof: {e}")))?;
        sqlx::query(&format!(
            "INSERT INTO notary_tree_heads ({HEAD_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ))
        .bind(head.tree_size)
        .bind(&head.root_hash)
        .bind(to_micros(head.signed_at))
        .bind(&head.key_id)
        .bind(&head.signature)
        .bind(head.previous_size)
        .bind(proof)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(Some(head))
    }

    pub async fn notary_keys(&self) -> Result<Vec<NotaryKeyRecord>> {
        let rows = sqlx::query(
            "SELECT id, algorithm, public_key, private_key, created_at FROM notary_keys \
             ORDER BY created_at, id",
        )
        .fetch_all(&self.read)
        .await
        .map_err(db_error)?;
        rows.iter()
            .map(|r| {
                Ok(NotaryKeyRecord {
                    id: col(r, "id")?,
                    algorithm: col(r, "algorithm")?,
                    public_key: col(r, "public_key")?,
                    private_key: col(r, "private_key")?,
                    created_at: col_time(r, "created_at")?,
                })
            })
            .collect()
    }

    pub async fn insert_notary_key(&self, key: &NotaryKeyRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO notary_keys (id, algorithm, public_key, private_key, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&key.id)
        .bind(&key.algorithm)
        .bind(&key.public_key)
        .bind(&key.private_key)
        .bind(to_micros(key.created_at))
        .execute(&self.write)
        .await
        .map_err(db_error)?;
        Ok(())
    }
}
