//! One workload, four doors: rusqlite and diesel on SQLite; sqlx and
//! diesel-async on PostgreSQL. Each reads an instance row by id into a
//! struct (the hottest read), lists 100, and writes batches of 64 rows in
//! one transaction (a group commit). Figures: operations per second.

use std::time::Instant;

use diesel::prelude::*;

diesel::table! {
    instances (id) {
        id -> Text,
        organization_id -> Text,
        name -> Text,
        state -> Text,
        cpu -> BigInt,
        memory_mib -> BigInt,
        disk_gib -> BigInt,
        image -> Text,
        datacenter_id -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
        version -> BigInt,
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, sqlx::FromRow)]
#[diesel(table_name = instances)]
struct Instance {
    id: String,
    organization_id: String,
    name: String,
    state: String,
    cpu: i64,
    memory_mib: i64,
    disk_gib: i64,
    image: String,
    datacenter_id: String,
    created_at: i64,
    updated_at: i64,
    version: i64,
}

const DDL: &str = "CREATE TABLE instances (id TEXT PRIMARY KEY NOT NULL, organization_id TEXT NOT NULL, \
    name TEXT NOT NULL, state TEXT NOT NULL, cpu BIGINT NOT NULL, memory_mib BIGINT NOT NULL, \
    disk_gib BIGINT NOT NULL, image TEXT NOT NULL, datacenter_id TEXT NOT NULL, \
    created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, version BIGINT NOT NULL)";
const INDEX: &str = "CREATE INDEX instances_org ON instances (organization_id, id)";
const COLUMNS: &str = "id, organization_id, name, state, cpu, memory_mib, disk_gib, image, \
    datacenter_id, created_at, updated_at, version";

const ORG: &str = "00000000-0000-7000-8000-000000000001";
const ROWS: usize = 20_000;
const READS: usize = 50_000;
const LISTS: usize = 2_000;
const BATCH: usize = 64;
const BATCHES: usize = 100;

fn instance(i: usize) -> Instance {
    Instance {
        id: uuid::Uuid::now_v7().to_string(),
        organization_id: ORG.to_owned(),
        name: format!("vm-{i}"),
        state: "Running".to_owned(),
        cpu: 2,
        memory_mib: 2048,
        disk_gib: 20,
        image: "debian-12".to_owned(),
        datacenter_id: ORG.to_owned(),
        created_at: i as i64,
        updated_at: i as i64,
        version: 1,
    }
}

/// `($1, …, $12), ($13, …)`: one statement for a whole batch.
fn values_list(rows: usize, prefix: char) -> String {
    (0..rows)
        .map(|r| {
            let cols: Vec<String> = (1..=12).map(|c| format!("{prefix}{}", r * 12 + c)).collect();
            format!("({})", cols.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn rate(what: &str, door: &str, n: usize, started: Instant) {
    let secs = started.elapsed().as_secs_f64();
    println!("{what:<28} {door:<14} {:>10.0}/s", n as f64 / secs);
}

fn sqlite_pragmas(c: &rusqlite::Connection) {
    c.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")
        .unwrap();
}

fn rusqlite_door(path: &str, ids: &[String]) {
    let c = rusqlite::Connection::open(path).unwrap();
    sqlite_pragmas(&c);
    let decode = |r: &rusqlite::Row| -> rusqlite::Result<Instance> {
        Ok(Instance {
            id: r.get(0)?,
            organization_id: r.get(1)?,
            name: r.get(2)?,
            state: r.get(3)?,
            cpu: r.get(4)?,
            memory_mib: r.get(5)?,
            disk_gib: r.get(6)?,
            image: r.get(7)?,
            datacenter_id: r.get(8)?,
            created_at: r.get(9)?,
            updated_at: r.get(10)?,
            version: r.get(11)?,
        })
    };
    let started = Instant::now();
    for i in 0..READS {
        let sql = format!("SELECT {COLUMNS} FROM instances WHERE id = ?1");
        let mut st = c.prepare_cached(&sql).unwrap();
        let row = st.query_row([&ids[i % ids.len()]], decode).unwrap();
        std::hint::black_box(row);
    }
    rate("sqlite get by id", "rusqlite", READS, started);
    let started = Instant::now();
    for _ in 0..LISTS {
        let sql = format!(
            "SELECT {COLUMNS} FROM instances WHERE organization_id = ?1 ORDER BY id LIMIT 100"
        );
        let mut st = c.prepare_cached(&sql).unwrap();
        let rows: Vec<Instance> = st
            .query_map([ORG], decode)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows.len(), 100);
    }
    rate("sqlite list 100", "rusqlite", LISTS, started);
    let started = Instant::now();
    let mut c = c;
    for b in 0..BATCHES {
        let tx = c.transaction().unwrap();
        {
            let mut st = tx
                .prepare_cached(&format!(
                    "INSERT INTO instances ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
                ))
                .unwrap();
            for i in 0..BATCH {
                let v = instance(b * BATCH + i);
                st.execute(rusqlite::params![
                    v.id, v.organization_id, v.name, v.state, v.cpu, v.memory_mib, v.disk_gib,
                    v.image, v.datacenter_id, v.created_at, v.updated_at, v.version
                ])
                .unwrap();
            }
        }
        tx.commit().unwrap();
    }
    rate("sqlite insert (64 per tx)", "rusqlite", BATCHES * BATCH, started);
    let sql = format!("INSERT INTO instances ({COLUMNS}) VALUES {}", values_list(BATCH, '?'));
    let started = Instant::now();
    for b in 0..BATCHES {
        let tx = c.transaction().unwrap();
        {
            let mut st = tx.prepare_cached(&sql).unwrap();
            let rows: Vec<Instance> = (0..BATCH).map(|i| instance(b * BATCH + i)).collect();
            let mut params: Vec<&dyn rusqlite::ToSql> = Vec::new();
            for v in &rows {
                params.extend([&v.id as &dyn rusqlite::ToSql, &v.organization_id, &v.name, &v.state,
                    &v.cpu, &v.memory_mib, &v.disk_gib, &v.image, &v.datacenter_id, &v.created_at,
                    &v.updated_at, &v.version]);
            }
            st.execute(params.as_slice()).unwrap();
        }
        tx.commit().unwrap();
    }
    rate("sqlite insert (1 stmt of 64)", "rusqlite", BATCHES * BATCH, started);
}

fn diesel_sqlite_door(path: &str, ids: &[String]) {
    use diesel::connection::SimpleConnection;
    let mut c = SqliteConnection::establish(path).unwrap();
    c.batch_execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")
        .unwrap();
    let started = Instant::now();
    for i in 0..READS {
        let row: Instance = instances::table
            .find(&ids[i % ids.len()])
            .select(Instance::as_select())
            .first(&mut c)
            .unwrap();
        std::hint::black_box(row);
    }
    rate("sqlite get by id", "diesel", READS, started);
    let started = Instant::now();
    for _ in 0..LISTS {
        let rows: Vec<Instance> = instances::table
            .filter(instances::organization_id.eq(ORG))
            .order(instances::id)
            .limit(100)
            .select(Instance::as_select())
            .load(&mut c)
            .unwrap();
        assert_eq!(rows.len(), 100);
    }
    rate("sqlite list 100", "diesel", LISTS, started);
    let started = Instant::now();
    for b in 0..BATCHES {
        c.transaction::<_, diesel::result::Error, _>(|c| {
            for i in 0..BATCH {
                diesel::insert_into(instances::table)
                    .values(&instance(b * BATCH + i))
                    .execute(c)?;
            }
            Ok(())
        })
        .unwrap();
    }
    rate("sqlite insert (64 per tx)", "diesel", BATCHES * BATCH, started);
    let started = Instant::now();
    for b in 0..BATCHES {
        let rows: Vec<Instance> = (0..BATCH).map(|i| instance(b * BATCH + i)).collect();
        c.transaction::<_, diesel::result::Error, _>(|c| {
            diesel::insert_into(instances::table).values(&rows).execute(c)?;
            Ok(())
        })
        .unwrap();
    }
    rate("sqlite insert (1 stmt of 64)", "diesel", BATCHES * BATCH, started);
}

async fn sqlx_pg_door(url: &str, ids: &[String], concurrency: usize) {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(concurrency as u32)
        .connect(url)
        .await
        .unwrap();
    let get = format!("SELECT {COLUMNS} FROM instances WHERE id = $1");
    let started = Instant::now();
    futures::future::join_all((0..concurrency).map(|w| {
        let (pool, get) = (pool.clone(), get.clone());
        async move {
            let mut c = pool.acquire().await.unwrap();
            for i in (w..READS).step_by(concurrency) {
                let row: Instance = sqlx::query_as(&get)
                    .bind(&ids[i % ids.len()])
                    .fetch_one(&mut *c)
                    .await
                    .unwrap();
                std::hint::black_box(row);
            }
        }
    }))
    .await;
    rate("pg get by id (32 tasks)", "sqlx", READS, started);
    let list = format!(
        "SELECT {COLUMNS} FROM instances WHERE organization_id = $1 ORDER BY id LIMIT 100"
    );
    let started = Instant::now();
    futures::future::join_all((0..concurrency).map(|w| {
        let (pool, list) = (pool.clone(), list.clone());
        async move {
            let mut c = pool.acquire().await.unwrap();
            for _ in (w..LISTS).step_by(concurrency) {
                let rows: Vec<Instance> =
                    sqlx::query_as(&list).bind(ORG).fetch_all(&mut *c).await.unwrap();
                assert_eq!(rows.len(), 100);
            }
        }
    }))
    .await;
    rate("pg list 100 (32 tasks)", "sqlx", LISTS, started);
    let insert = format!(
        "INSERT INTO instances ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
    );
    let started = Instant::now();
    for b in 0..BATCHES {
        let mut tx = pool.begin().await.unwrap();
        for i in 0..BATCH {
            let v = instance(b * BATCH + i);
            sqlx::query(&insert)
                .bind(v.id).bind(v.organization_id).bind(v.name).bind(v.state).bind(v.cpu)
                .bind(v.memory_mib).bind(v.disk_gib).bind(v.image).bind(v.datacenter_id)
                .bind(v.created_at).bind(v.updated_at).bind(v.version)
                .execute(&mut *tx)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
    }
    rate("pg insert (64 per tx)", "sqlx", BATCHES * BATCH, started);
    let sql = format!("INSERT INTO instances ({COLUMNS}) VALUES {}", values_list(BATCH, '$'));
    let started = Instant::now();
    for b in 0..BATCHES {
        let mut tx = pool.begin().await.unwrap();
        let mut q = sqlx::query(&sql);
        for i in 0..BATCH {
            let v = instance(b * BATCH + i);
            q = q.bind(v.id).bind(v.organization_id).bind(v.name).bind(v.state).bind(v.cpu)
                .bind(v.memory_mib).bind(v.disk_gib).bind(v.image).bind(v.datacenter_id)
                .bind(v.created_at).bind(v.updated_at).bind(v.version);
        }
        q.execute(&mut *tx).await.unwrap();
        tx.commit().await.unwrap();
    }
    rate("pg insert (1 stmt of 64)", "sqlx", BATCHES * BATCH, started);
}

async fn diesel_pg_door(url: &str, ids: &[String], concurrency: usize) {
    use diesel_async::pooled_connection::deadpool::Pool;
    use diesel_async::pooled_connection::AsyncDieselConnectionManager;
    use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new(url);
    let pool = Pool::builder(manager).max_size(concurrency).build().unwrap();
    let started = Instant::now();
    futures::future::join_all((0..concurrency).map(|w| {
        let pool = pool.clone();
        async move {
            let mut c = pool.get().await.unwrap();
            for i in (w..READS).step_by(concurrency) {
                let query = instances::table
                    .find(&ids[i % ids.len()])
                    .select(Instance::as_select());
                let row: Instance = RunQueryDsl::first(query, &mut c).await.unwrap();
                std::hint::black_box(row);
            }
        }
    }))
    .await;
    rate("pg get by id (32 tasks)", "diesel-async", READS, started);
    let started = Instant::now();
    futures::future::join_all((0..concurrency).map(|w| {
        let pool = pool.clone();
        async move {
            let mut c = pool.get().await.unwrap();
            for _ in (w..LISTS).step_by(concurrency) {
                let query = instances::table
                    .filter(instances::organization_id.eq(ORG))
                    .order(instances::id)
                    .limit(100)
                    .select(Instance::as_select());
                let rows: Vec<Instance> = RunQueryDsl::load(query, &mut c).await.unwrap();
                assert_eq!(rows.len(), 100);
            }
        }
    }))
    .await;
    rate("pg list 100 (32 tasks)", "diesel-async", LISTS, started);
    let mut c = pool.get().await.unwrap();
    let started = Instant::now();
    for b in 0..BATCHES {
        c.transaction::<_, diesel::result::Error, _>(async |c| {
            for i in 0..BATCH {
                let insert =
                    diesel::insert_into(instances::table).values(instance(b * BATCH + i));
                RunQueryDsl::execute(insert, &mut *c).await?;
            }
            Ok(())
        })
        .await
        .unwrap();
    }
    rate("pg insert (64 per tx)", "diesel-async", BATCHES * BATCH, started);
    let started = Instant::now();
    for b in 0..BATCHES {
        let rows: Vec<Instance> = (0..BATCH).map(|i| instance(b * BATCH + i)).collect();
        c.transaction::<_, diesel::result::Error, _>(async |c| {
            let insert = diesel::insert_into(instances::table).values(rows);
            RunQueryDsl::execute(insert, &mut *c).await?;
            Ok(())
        })
        .await
        .unwrap();
    }
    rate("pg insert (1 stmt of 64)", "diesel-async", BATCHES * BATCH, started);
}

fn seed_sqlite(path: &str) -> Vec<String> {
    let _ = std::fs::remove_file(path);
    let mut c = rusqlite::Connection::open(path).unwrap();
    sqlite_pragmas(&c);
    c.execute_batch(&format!("{DDL}; {INDEX};")).unwrap();
    let tx = c.transaction().unwrap();
    let mut ids = Vec::new();
    for i in 0..ROWS {
        let v = instance(i);
        tx.execute(
            &format!("INSERT INTO instances ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"),
            rusqlite::params![v.id, v.organization_id, v.name, v.state, v.cpu, v.memory_mib,
                v.disk_gib, v.image, v.datacenter_id, v.created_at, v.updated_at, v.version],
        )
        .unwrap();
        ids.push(v.id);
    }
    tx.commit().unwrap();
    ids
}

async fn seed_pg(url: &str) -> Vec<String> {
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    sqlx::query("DROP TABLE IF EXISTS instances").execute(&pool).await.unwrap();
    sqlx::query(DDL).execute(&pool).await.unwrap();
    sqlx::query(INDEX).execute(&pool).await.unwrap();
    let mut ids = Vec::new();
    let mut tx = pool.begin().await.unwrap();
    for i in 0..ROWS {
        let v = instance(i);
        sqlx::query(&format!(
            "INSERT INTO instances ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        ))
        .bind(&v.id).bind(v.organization_id).bind(v.name).bind(v.state).bind(v.cpu)
        .bind(v.memory_mib).bind(v.disk_gib).bind(v.image).bind(v.datacenter_id)
        .bind(v.created_at).bind(v.updated_at).bind(v.version)
        .execute(&mut *tx)
        .await
        .unwrap();
        ids.push(v.id);
    }
    tx.commit().await.unwrap();
    ids
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let pg = std::env::args().nth(1);
    let rounds: usize = std::env::var("ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(3);
    for round in 1..=rounds {
        println!("-- round {round}");
        let path = std::env::temp_dir().join("store-door.db");
        let path = path.to_str().unwrap().to_owned();
        let ids = seed_sqlite(&path);
        // Alternate which door goes first, so neither always meets a warm cache.
        if round % 2 == 1 {
            rusqlite_door(&path, &ids);
            diesel_sqlite_door(&path, &ids);
        } else {
            diesel_sqlite_door(&path, &ids);
            rusqlite_door(&path, &ids);
        }
        if let Some(url) = &pg {
            let ids = seed_pg(url).await;
            if round % 2 == 1 {
                sqlx_pg_door(url, &ids, 32).await;
                diesel_pg_door(url, &ids, 32).await;
            } else {
                diesel_pg_door(url, &ids, 32).await;
                sqlx_pg_door(url, &ids, 32).await;
            }
        }
    }
}
