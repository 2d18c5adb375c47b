//! What the server and the worker both do at start: reach PostgreSQL (applying migrations) and
//! Redis, and load the languages. Dependencies that are still starting are waited for.

use std::time::{Duration, Instant};

use anyhow::Context;

use crate::config::Connections;
use crate::db;
use crate::languages::Languages;
use crate::queue::Redis;

/// How long to wait for PostgreSQL and Redis to come up.
const DEPENDENCY_TIMEOUT: Duration = Duration::from_secs(60);

async fn retry<T, E: std::fmt::Display, F: Future<Output = Result<T, E>>>(
    what: &str,
    mut attempt: impl FnMut() -> F,
) -> anyhow::Result<T> {
    let deadline = Instant::now() + DEPENDENCY_TIMEOUT;
    let mut pause = Duration::from_millis(100);
    loop {
        match attempt().await {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() < deadline => {
                tracing::warn!(error = %e, "Waiting for {what}.");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
            Err(e) => anyhow::bail!("{what} is unreachable: {e}"),
        }
    }
}

/// Connects to both stores and loads the languages.
pub(crate) async fn connect(
    c: &Connections,
    durability: db::Durability,
) -> anyhow::Result<(deadpool_postgres::Pool, Redis, Languages)> {
    let languages = Languages::load(c.languages_file.as_deref()).context("cannot load the languages")?;
    let pool = db::pool(&c.database_url, c.database_pool_size, durability)?;
    retry("PostgreSQL", || db::migrate(&pool)).await?;
    let redis = Redis::new(&c.redis_url, c.redis_pool_size)?;
    retry("Redis", || redis.ensure_group()).await?;
    Ok((pool, redis, languages))
}
