use crate::door::{job, refuse_while_held, run, run_raw, unless_taken};
use crate::tables::{datacenters, users};
use crate::{Datacenter, NewDatacenter, Store};
use diesel::prelude::*;
use nephele_common::clock::to_micros;
use nephele_common::ids::DatacenterId;
use nephele_common::page::{Page, PageRequest};
use nephele_common::{Error, Result};

impl Store {
    pub async fn datacenter(&self, id: DatacenterId) -> Result<Option<Datacenter>> {
        let mut c = self.door.reader().await?;
        run!(c.optional_first(
            datacenters::table
                .find(id.to_string())
                .select(Datacenter::as_select())
        ))
    }

    /// Every data center, by id (this server's own first).
    pub async fn list_datacenters(&self, page: &PageRequest) -> Result<Page<Datacenter>> {
        // Every id is after the empty text.
        let after = page.after.clone().unwrap_or_default();
        let mut c = self.door.reader().await?;
        let items = run!(c.load(
            datacenters::table
                .select(Datacenter::as_select())
                .filter(datacenters::id.gt(&after))
                .order(datacenters::id)
                .limit(i64::from(page.limit) + 1)
        ))?;
        Ok(Page::from_rows(items, page.limit, |d| d.id.to_string()))
    }

    pub async fn create_datacenter(&self, new: &NewDatacenter) -> Result<Datacenter> {
        let made = Datacenter {
            id: new.id,
            name: new.name.to_string(),
            server_url: Some(new.server_url.clone()),
            created_at: new.now,
            updated_at: new.now,
            version: 1,
        };
        let row = made.clone();
        self.write(job!(|c| {
            unless_taken(
                run_raw!(c.execute(diesel::insert_into(datacenters::table).values((
                    datacenters::id.eq(row.id.to_string()),
                    datacenters::name.eq(&row.name),
                    datacenters::server_url.eq(&row.server_url),
                    datacenters::created_at.eq(to_micros(row.created_at)),
                    datacenters::updated_at.eq(to_micros(row.updated_at)),
                    datacenters::version.eq(row.version),
                )))),
                "name",
                || Error::name_taken("datacenters", "name", &row.name),
            )
            .map(drop)
        }))
        .await?;
        Ok(made)
    }

    /// Deletes a data center that is no user's home (409 otherwise).
    pub async fn delete_datacenter(&self, id: DatacenterId) -> Result<()> {
        self.write(job!(|c| {
            // Under the lock a user's home is checked by (see `users`).
            crate::door::lock_invariants(c).await?;
            let held: i64 = run!(c.get_result(
                users::table
                    .filter(users::datacenter_id.eq(id.to_string()))
                    .count()
            ))?;
            refuse_while_held(
                "datacenters",
                id,
                held,
                "users",
                "Cannot delete a data center that is still the home of users",
            )?;
            let deleted = run!(c.execute(diesel::delete(datacenters::table.find(id.to_string()))))?;
            if deleted == 0 {
                return Err(Error::not_found("datacenters", id));
            }
            Ok(())
        }))
        .await
    }
}
