//! The notary's records: stored files, the signed tree heads of the
//! Merkle log of their hashes, and the notary's keys.

use crate::columns::{MaybeMicros, Micros, Parsed};
use crate::door::{db_error, job, lock_invariants, run, Conn};
use crate::tables::{notary_files, notary_keys, notary_tree_heads};
use crate::Store;
use chrono::{DateTime, Utc};
use diesel::dsl::sql;
use diesel::expression::SqlLiteral;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Nullable, Text};
use diesel::sqlite::Sqlite;
use nephele_common::clock::to_micros;
use nephele_common::ids::{OrganizationId, StoredFileId};
use nephele_common::page::{Page, PageRequest};
use nephele_common::{Error, Result};

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
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = notary_keys, check_for_backend(Sqlite, Pg))]
pub struct NotaryKeyRecord {
    pub id: String,
    pub algorithm: String,
    pub public_key: String,
    pub private_key: String,
    #[diesel(deserialize_as = Micros)]
    pub created_at: DateTime<Utc>,
}

/// A file waiting for its batch.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = notary_files, check_for_backend(Sqlite, Pg))]
pub struct PendingFile {
    #[diesel(deserialize_as = Parsed<StoredFileId>)]
    pub id: StoredFileId,
    pub sha256: String,
}

/// When the first tree head that holds a file was signed (a correlated
/// subquery, which diesel's DSL does not say).
fn notarized_at() -> SqlLiteral<Nullable<BigInt>> {
    sql("(SELECT h.signed_at FROM notary_tree_heads h \
         WHERE h.tree_size > notary_files.leaf_index ORDER BY h.tree_size LIMIT 1)")
}

/// A stored file's row: its content state still text.
#[derive(Queryable, Selectable)]
#[diesel(table_name = notary_files, check_for_backend(Sqlite, Pg))]
struct FileRow {
    #[diesel(deserialize_as = Parsed<StoredFileId>)]
    id: StoredFileId,
    #[diesel(deserialize_as = Parsed<OrganizationId>)]
    organization_id: OrganizationId,
    owner_type: String,
    owner_id: String,
    name: String,
    sha256: String,
    size_bytes: Option<i64>,
    content: String,
    leaf_index: Option<i64>,
    #[diesel(
        select_expression = notarized_at(),
        select_expression_type = SqlLiteral<Nullable<BigInt>>,
        deserialize_as = MaybeMicros
    )]
    notarized_at: Option<DateTime<Utc>>,
    #[diesel(deserialize_as = Micros)]
    created_at: DateTime<Utc>,
    #[diesel(deserialize_as = Micros)]
    updated_at: DateTime<Utc>,
    version: i64,
}

fn stored_file(r: FileRow) -> Result<StoredFile> {
    Ok(StoredFile {
        id: r.id,
        organization_id: r.organization_id,
        owner_type: r.owner_type,
        owner_id: r.owner_id,
        name: r.name,
        sha256: r.sha256,
        size_bytes: r.size_bytes,
        content: Content::parse(&r.content)?,
        leaf_index: r.leaf_index,
        notarized_at: r.notarized_at,
        created_at: r.created_at,
        updated_at: r.updated_at,
        version: r.version,
    })
}

/// A tree head's row: its consistency proof still JSON.
#[derive(Queryable, Selectable)]
#[diesel(table_name = notary_tree_heads, check_for_backend(Sqlite, Pg))]
struct HeadRow {
    tree_size: i64,
    root_hash: String,
    #[diesel(deserialize_as = Micros)]
    signed_at: DateTime<Utc>,
    key_id: String,
    signature: String,
    previous_size: i64,
    consistency_proof: String,
}

fn tree_head(r: HeadRow) -> Result<TreeHead> {
    Ok(TreeHead {
        tree_size: r.tree_size,
        root_hash: r.root_hash,
        signed_at: r.signed_at,
        key_id: r.key_id,
        signature: r.signature,
        previous_size: r.previous_size,
        consistency_proof: serde_json::from_str(&r.consistency_proof)
            .map_err(|e| Error::internal(format!("corrupt consistency proof: {e}")))?,
    })
}

/// The newest tree head's size, if any.
async fn latest_size(c: &mut Conn) -> Result<Option<i64>> {
    run!(c.get_result(
        notary_tree_heads::table.select(diesel::dsl::max(notary_tree_heads::tree_size))
    ))
}

impl Store {
    pub async fn insert_stored_file(&self, new: &NewStoredFile) -> Result<StoredFile> {
        let made = StoredFile {
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
        };
        let row = made.clone();
        self.write(job!(|c| {
            run!(c.execute(diesel::insert_into(notary_files::table).values((
                notary_files::id.eq(row.id.to_string()),
                notary_files::organization_id.eq(row.organization_id.to_string()),
                notary_files::owner_type.eq(&row.owner_type),
                notary_files::owner_id.eq(&row.owner_id),
                notary_files::name.eq(&row.name),
                notary_files::sha256.eq(&row.sha256),
                notary_files::size_bytes.eq(row.size_bytes),
                notary_files::content.eq(row.content.as_str()),
                notary_files::created_at.eq(to_micros(row.created_at)),
                notary_files::updated_at.eq(to_micros(row.updated_at)),
                notary_files::version.eq(row.version),
            ))))?;
            Ok(())
        }))
        .await?;
        Ok(made)
    }

    pub async fn stored_file(&self, id: StoredFileId) -> Result<Option<StoredFile>> {
        let mut c = self.door.reader().await?;
        run!(c.optional_first(
            notary_files::table
                .find(id.to_string())
                .select(FileRow::as_select())
        ))?
        .map(stored_file)
        .transpose()
    }

    /// The first notarized stored file with this content, whosever it is.
    pub async fn first_notarized(&self, sha256: &str) -> Result<Option<StoredFile>> {
        let mut c = self.door.reader().await?;
        run!(c.optional_first(
            notary_files::table
                .select(FileRow::as_select())
                .filter(notary_files::sha256.eq(sha256))
                .filter(notary_files::leaf_index.is_not_null())
                .order(notary_files::leaf_index)
        ))?
        .map(stored_file)
        .transpose()
    }

    /// An organization's stored files by id, filtered.
    pub async fn list_stored_files(
        &self,
        org: OrganizationId,
        filter: &StoredFileFilter,
        page: &PageRequest,
    ) -> Result<Page<StoredFile>> {
        // A filter that is not given holds for every file (`OR true`);
        // every id is after the empty text.
        let (any_sha256, any_name) = (filter.sha256.is_none(), filter.name.is_none());
        let sha256 = filter.sha256.clone().unwrap_or_default();
        let name = filter.name.clone().unwrap_or_default();
        let after = page.after.clone().unwrap_or_default();
        let mut c = self.door.reader().await?;
        let rows = run!(c.load(
            notary_files::table
                .select(FileRow::as_select())
                .filter(notary_files::organization_id.eq(org.to_string()))
                .filter(
                    notary_files::sha256
                        .eq(&sha256)
                        .or(any_sha256.into_sql::<Bool>())
                )
                .filter(notary_files::name.eq(&name).or(any_name.into_sql::<Bool>()))
                .filter(notary_files::id.gt(&after))
                .order(notary_files::id)
                .limit(i64::from(page.limit) + 1)
        ))?;
        let items = rows
            .into_iter()
            .map(stored_file)
            .collect::<Result<Vec<_>>>()?;
        Ok(Page::from_rows(items, page.limit, |f| f.id.to_string()))
    }

    /// Marks a stored file's content removed; false when it had none.
    pub async fn mark_content_deleted(&self, id: StoredFileId, now: DateTime<Utc>) -> Result<bool> {
        self.write(job!(|c| {
            let changed = run!(c.execute(
                diesel::update(
                    notary_files::table
                        .find(id.to_string())
                        .filter(notary_files::content.eq(Content::Stored.as_str()))
                )
                .set((
                    notary_files::content.eq(Content::Deleted.as_str()),
                    notary_files::updated_at.eq(to_micros(now)),
                    notary_files::version.eq(notary_files::version + 1),
                ))
            ))?;
            Ok(changed == 1)
        }))
        .await
    }

    /// The ids of every stored file whose content is kept (to find files
    /// on disk that no record names).
    pub async fn stored_content_ids(&self) -> Result<Vec<String>> {
        let mut c = self.door.reader().await?;
        run!(c.load(
            notary_files::table
                .select(notary_files::id)
                .filter(notary_files::content.eq(Content::Stored.as_str()))
        ))
    }

    pub async fn latest_tree_head(&self) -> Result<Option<TreeHead>> {
        let mut c = self.door.reader().await?;
        run!(c.optional_first(
            notary_tree_heads::table
                .select(HeadRow::as_select())
                .order(notary_tree_heads::tree_size.desc())
        ))?
        .map(tree_head)
        .transpose()
    }

    /// Every tree head by size, oldest first.
    pub async fn list_tree_heads(&self, page: &PageRequest) -> Result<Page<TreeHead>> {
        // Every size is above the least integer.
        let after: i64 = match &page.after {
            Some(a) => a
                .parse()
                .map_err(|_| Error::invalid("pageToken", "is not a page of tree heads"))?,
            None => i64::MIN,
        };
        let mut c = self.door.reader().await?;
        let rows = run!(c.load(
            notary_tree_heads::table
                .select(HeadRow::as_select())
                .filter(notary_tree_heads::tree_size.gt(after))
                .order(notary_tree_heads::tree_size)
                .limit(i64::from(page.limit) + 1)
        ))?;
        let items = rows
            .into_iter()
            .map(tree_head)
            .collect::<Result<Vec<_>>>()?;
        Ok(Page::from_rows(items, page.limit, |h| {
            h.tree_size.to_string()
        }))
    }

    /// The hashes of the log's leaves `from..to`, in order.
    pub async fn leaf_sha256s(&self, from: i64, to: i64) -> Result<Vec<String>> {
        let mut c = self.door.reader().await?;
        run!(c.load(
            notary_files::table
                .select(notary_files::sha256)
                .filter(notary_files::leaf_index.ge(from))
                .filter(notary_files::leaf_index.lt(to))
                .order(notary_files::leaf_index)
        ))
    }

    /// Notarizes up to `limit` pending files: `seal` gets the current head
    /// and the pending files in log order, and returns the head that
    /// appends them; the files get their leaf indexes and the head is
    /// stored, in one transaction, or nothing is. `None` when nothing was
    /// pending. One batch at a time, on every node.
    ///
    /// `seal` borrows its caller's state, so it cannot run inside a write
    /// job (which the SQLite writer may run on another caller's task): it
    /// seals what a read found, and the write, under the invariant lock,
    /// first checks that the log has not moved on since. If it has (another
    /// node's batch came first), nothing is written and the answer is a
    /// 503, as `seal` itself answers a head it did not expect.
    pub async fn notarize<F>(&self, limit: i64, seal: F) -> Result<Option<TreeHead>>
    where
        F: FnOnce(Option<&TreeHead>, &[PendingFile]) -> Result<TreeHead> + Send,
    {
        let current = self.latest_tree_head().await?;
        let pending = {
            let mut c = self.door.reader().await?;
            run!(c.load(
                notary_files::table
                    .select(PendingFile::as_select())
                    .filter(notary_files::leaf_index.is_null())
                    .order((notary_files::created_at, notary_files::id))
                    .limit(limit)
            ))?
        };
        if pending.is_empty() {
            return Ok(None);
        }
        let head = seal(current.as_ref(), &pending)?;
        let sealed_upon = current.as_ref().map(|h| h.tree_size);
        let first = sealed_upon.unwrap_or(0);
        let ids: Vec<String> = pending.iter().map(|f| f.id.to_string()).collect();
        let leaves: Vec<i64> = (first..).take(ids.len()).collect();
        let proof = serde_json::to_string(&head.consistency_proof)
            .map_err(|e| Error::internal(format!("consistency proof: {e}")))?;
        let stored = head.clone();
        self.write(job!(|c| {
            let moved_on = || Error::unavailable("the log moved on; the next batch catches up");
            lock_invariants(c).await?;
            if latest_size(c).await? != sealed_upon {
                return Err(moved_on());
            }
            // PostgreSQL: the batch in one statement, from arrays. SQLite:
            // a statement per file, which costs it no round trip.
            let numbered = match c {
                Conn::Pg(pg) => {
                    let numbering = diesel::sql_query(
                        "UPDATE notary_files SET leaf_index = j.leaf \
                         FROM unnest($1, $2) AS j (id, leaf) \
                         WHERE notary_files.id = j.id AND notary_files.leaf_index IS NULL",
                    )
                    .bind::<Array<Text>, _>(&ids)
                    .bind::<Array<BigInt>, _>(&leaves);
                    diesel_async::RunQueryDsl::execute(numbering, &mut **pg)
                        .await
                        .map_err(db_error)?
                }
                Conn::Sqlite(_) => {
                    let mut numbered = 0;
                    for (id, leaf) in ids.iter().zip(&leaves) {
                        numbered += run!(c.execute(
                            diesel::update(
                                notary_files::table
                                    .find(id)
                                    .filter(notary_files::leaf_index.is_null())
                            )
                            .set(notary_files::leaf_index.eq(leaf))
                        ))?;
                    }
                    numbered
                }
            };
            if numbered != ids.len() {
                return Err(moved_on());
            }
            run!(
                c.execute(diesel::insert_into(notary_tree_heads::table).values((
                    notary_tree_heads::tree_size.eq(stored.tree_size),
                    notary_tree_heads::root_hash.eq(&stored.root_hash),
                    notary_tree_heads::signed_at.eq(to_micros(stored.signed_at)),
                    notary_tree_heads::key_id.eq(&stored.key_id),
                    notary_tree_heads::signature.eq(&stored.signature),
                    notary_tree_heads::previous_size.eq(stored.previous_size),
                    notary_tree_heads::consistency_proof.eq(&proof),
                )))
            )?;
            Ok(())
        }))
        .await?;
        Ok(Some(head))
    }

    pub async fn notary_keys(&self) -> Result<Vec<NotaryKeyRecord>> {
        let mut c = self.door.reader().await?;
        run!(c.load(
            notary_keys::table
                .select(NotaryKeyRecord::as_select())
                .order((notary_keys::created_at, notary_keys::id))
        ))
    }

    pub async fn insert_notary_key(&self, key: &NotaryKeyRecord) -> Result<()> {
        let key = key.clone();
        self.write(job!(|c| {
            run!(c.execute(diesel::insert_into(notary_keys::table).values((
                notary_keys::id.eq(&key.id),
                notary_keys::algorithm.eq(&key.algorithm),
                notary_keys::public_key.eq(&key.public_key),
                notary_keys::private_key.eq(&key.private_key),
                notary_keys::created_at.eq(to_micros(key.created_at)),
            ))))?;
            Ok(())
        }))
        .await
    }
}
