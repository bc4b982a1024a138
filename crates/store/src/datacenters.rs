use crate::db::{
    col, col_id, col_time, db_error, lock_invariants, refuse_while_held, unique_violation,
};
use crate::{Datacenter, NewDatacenter, Store};
use nephele_common::clock::to_micros;
use nephele_common::ids::DatacenterId;
use nephele_common::page::{Page, PageRequest};
use nephele_common::{Error, Result};
use sqlx::any::AnyRow;

const COLUMNS: &str = "id, name, server_url, created_at, updated_at, version";

fn datacenter_from_row(r: &AnyRow) -> Result<Datacenter> {
    Ok(Datacenter {
        id: col_id(r, "id")?,
        name: col(r, "name")?,
        server_url: col(r, "server_url")?,
        created_at: col_time(r, "created_at")?,
        updated_at: col_time(r, "updated_at")?,
        version: col(r, "version")?,
    })
}

impl Store {
    pub async fn datacenter(&self, id: DatacenterId) -> Result<Option<Datacenter>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM datacenters WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&self.read)
            .await
            .map_err(db_error)?;
        row.as_ref().map(datacenter_from_row).transpose()
    }

    /// Every data center, by id (this server's own first).
    pub async fn list_datacenters(&self, page: &PageRequest) -> Result<Page<Datacenter>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM datacenters WHERE ($1 IS NULL OR id > $1) ORDER BY id LIMIT $2"
        ))
        .bind(page.after.clone())
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&self.read)
        .await
        .map_err(db_error)?;
        let items = rows
            .iter()
            .map(datacenter_from_row)
            .collect::<Result<Vec<_>>>()?;
        Ok(Page::from_rows(items, page.limit, |d| d.id.to_string()))
    }

    pub async fn create_datacenter(&self, new: &NewDatacenter) -> Result<Datacenter> {
        sqlx::query(
            "INSERT INTO datacenters (id, name, server_url, created_at, updated_at, version) \
             VALUES ($1, $2, $3, $4, $4, 1)",
        )
        .bind(new.id.to_string())
        .bind(new.name.as_str())
        .bind(&new.server_url)
        .bind(to_micros(new.now))
        .execute(&self.write)
        .await
        .map_err(|e| match unique_violation(&e) {
            Some(_) => Error::name_taken("datacenters", "name", new.name.as_str()),
            None => db_error(e),
        })?;
        Ok(Datacenter {
            id: new.id,
            name: new.name.to_string(),
            server_url: Some(new.server_url.clone()),
            created_at: new.now,
            updated_at: new.now,
            version: 1,
        })
    }

    /// Deletes a data center that is no user's home (409 otherwise).
    pub async fn delete_datacenter(&self, id: DatacenterId) -> Result<()> {
        let mut tx = self.write.begin().await.map_err(db_error)?;
        // Under the lock a user's home is checked by (see `users`).
        lock_invariants(self, &mut tx).await?;
        refuse_while_held(
            &mut tx,
            "datacenters",
            &id,
            "SELECT count(*) FROM users WHERE datacenter_id = $1",
            "users",
            "Cannot delete a data center that is still the home of users",
        )
        .await?;
        let done = sqlx::query("DELETE FROM datacenters WHERE id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found("datacenters", id));
        }
        tx.commit().await.map_err(db_error)?;
        Ok(())
    }
}
