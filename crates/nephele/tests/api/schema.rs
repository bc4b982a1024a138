//! Both backends' migrations describe the same schema.

use crate::support::*;
use nephele_store::{Store, StoreOptions};

#[tokio::test]
async fn sqlite_and_postgres_schemas_stay_in_step() {
    let Some(admin) = postgres_admin_url() else {
        // Runs in the PostgreSQL suite (NEPHELE_TEST_DATABASE_URL), which CI always runs.
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Store::connect(
        &nephele::config::sqlite_url(dir.path()),
        &StoreOptions::default(),
    )
    .await
    .unwrap();
    let pg = PgDatabase::create(&admin).await;
    let postgres = Store::connect(&pg.url, &StoreOptions::default())
        .await
        .unwrap();
    let a = sqlite.schema().await.unwrap();
    let b = postgres.schema().await.unwrap();
    assert!(a.columns.len() > 50 && a.indexes.len() > 20 && a.foreign_keys.len() > 5);
    // Part by part, so a failure names what differs.
    assert_eq!(a.columns, b.columns);
    assert_eq!(a.indexes, b.indexes);
    assert_eq!(a.foreign_keys, b.foreign_keys);
    // Behaviour lives in code, not in a trigger on one backend.
    assert_eq!(a.triggers, Vec::<String>::new());
    assert_eq!(b.triggers, Vec::<String>::new());
    sqlite.close().await;
    postgres.close().await;
}

#[tokio::test]
async fn migrations_are_idempotent_on_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (url, _pg) = test_database(dir.path()).await;
    let first = Store::connect(&url, &StoreOptions::default())
        .await
        .unwrap();
    first.close().await;
    let again = Store::connect(&url, &StoreOptions::default())
        .await
        .unwrap();
    assert!(!again.is_initialized().await.unwrap());
    again.close().await;
}
