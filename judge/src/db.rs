//! PostgreSQL: the truth about submissions. Pooled connections, versioned migrations applied at
//! start, and every query the judge makes.

use std::str::FromStr;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use time::OffsetDateTime;
use tokio_postgres::{NoTls, Row};
use uuid::Uuid;

/// Migrations, in order. A migration is never edited once released; add a new one.
const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("../migrations/0001_submissions.sql")),
    (2, include_str!("../migrations/0002_crashes.sql")),
];

/// A database failure.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The URL is not a PostgreSQL URL.
    #[error("invalid DATABASE_URL: {0}")]
    Url(String),
    /// No connection could be had from the pool.
    #[error("no database connection: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    /// A query failed.
    #[error("database query failed: {0}")]
    Query(#[from] tokio_postgres::Error),
    /// The pool could not be built.
    #[error("cannot build the database pool: {0}")]
    Build(String),
}

/// How durable a pool's commits are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Every commit is on disk before it returns (accepting submissions).
    Flushed,
    /// Commits may be lost in a PostgreSQL crash. Only for writes whose loss is repaired:
    /// a worker's claim or result lost with PostgreSQL leaves the submission unfinished, and
    /// the sweeper runs it again.
    Relaxed,
}

/// Opens a pool of `size` connections.
pub fn pool(url: &str, size: usize, durability: Durability) -> Result<Pool, DbError> {
    let mut config = tokio_postgres::Config::from_str(url).map_err(|e| DbError::Url(e.to_string()))?;
    if durability == Durability::Relaxed {
        config.options("-c synchronous_commit=off");
    }
    let manager =
        Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
    Pool::builder(manager).max_size(size).build().map_err(|e| DbError::Build(e.to_string()))
}

/// Applies the migrations this database lacks, one process at a time.
pub async fn migrate(pool: &Pool) -> Result<(), DbError> {
    let mut client = pool.get().await?;
    // Any constant works as the lock's key, as long as it is always the same one.
    client.execute("SELECT pg_advisory_lock(2358)", &[]).await?;
    let result = async {
        client
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (
                     version INTEGER PRIMARY KEY,
                     applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
            )
            .await?;
        for (version, sql) in MIGRATIONS {
            let done =
                client.query_opt("SELECT 1 FROM schema_migrations WHERE version = $1", &[version]).await?;
            if done.is_some() {
                continue;
            }
            let tx = client.transaction().await?;
            tx.batch_execute(sql).await?;
            tx.execute("INSERT INTO schema_migrations (version) VALUES ($1)", &[version]).await?;
            tx.commit().await?;
            tracing::info!(version, "Applied a database migration.");
        }
        Ok::<_, DbError>(())
    }
    .await;
    client.execute("SELECT pg_advisory_unlock(2358)", &[]).await?;
    result
}

/// A submission as a client creates it, validated and with defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSubmission {
    pub source_code: Option<Vec<u8>>,
    pub language_id: i32,
    pub compiler_options: Option<String>,
    pub command_line_arguments: Option<String>,
    pub stdin: Option<Vec<u8>>,
    pub expected_output: Option<Vec<u8>>,
    pub number_of_runs: i32,
    pub cpu_time_limit: f64,
    pub cpu_extra_time: f64,
    pub wall_time_limit: f64,
    pub memory_limit: i32,
    pub stack_limit: i32,
    pub max_processes_and_or_threads: i32,
    pub enable_per_process_and_thread_time_limit: bool,
    pub enable_per_process_and_thread_memory_limit: bool,
    pub max_file_size: i32,
    pub redirect_stderr_to_stdout: bool,
    pub callback_url: Option<String>,
    pub additional_files: Option<Vec<u8>>,
    pub enable_network: bool,
}

/// A stored submission.
#[derive(Debug, Clone, PartialEq)]
pub struct Submission {
    pub id: i64,
    pub token: Uuid,
    pub new: NewSubmission,
    pub stdout: Option<Vec<u8>>,
    pub stderr: Option<Vec<u8>>,
    pub compile_output: Option<Vec<u8>>,
    pub message: Option<String>,
    pub status_id: i32,
    pub exit_code: Option<i32>,
    pub exit_signal: Option<i32>,
    pub time: Option<f64>,
    pub wall_time: Option<f64>,
    pub memory: Option<i32>,
    pub created_at: OffsetDateTime,
    pub started_at: Option<OffsetDateTime>,
    pub finished_at: Option<OffsetDateTime>,
    pub attempts: i32,
    /// Claims that ended with their worker gone (or panicking) before a result.
    pub crashes: i32,
    pub cancel_requested: bool,
}

const COLUMNS: &str = "id, token, source_code, language_id, compiler_options, command_line_arguments, stdin, \
     expected_output, number_of_runs, cpu_time_limit, cpu_extra_time, wall_time_limit, memory_limit, stack_limit, \
     max_processes_and_or_threads, enable_per_process_and_thread_time_limit, \
     enable_per_process_and_thread_memory_limit, max_file_size, redirect_stderr_to_stdout, callback_url, \
     additional_files, enable_network, stdout, stderr, compile_output, message, status_id, exit_code, exit_signal, \
     time, wall_time, memory, created_at, started_at, finished_at, attempts, crashes, cancel_requested";

impl Submission {
    fn from_row(row: &Row) -> Result<Self, tokio_postgres::Error> {
        Ok(Submission {
            id: row.try_get("id")?,
            token: row.try_get("token")?,
            new: NewSubmission {
                source_code: row.try_get("source_code")?,
                language_id: row.try_get("language_id")?,
                compiler_options: row.try_get("compiler_options")?,
                command_line_arguments: row.try_get("command_line_arguments")?,
                stdin: row.try_get("stdin")?,
                expected_output: row.try_get("expected_output")?,
                number_of_runs: row.try_get("number_of_runs")?,
                cpu_time_limit: row.try_get("cpu_time_limit")?,
                cpu_extra_time: row.try_get("cpu_extra_time")?,
                wall_time_limit: row.try_get("wall_time_limit")?,
                memory_limit: row.try_get("memory_limit")?,
                stack_limit: row.try_get("stack_limit")?,
                max_processes_and_or_threads: row.try_get("max_processes_and_or_threads")?,
                enable_per_process_and_thread_time_limit: row
                    .try_get("enable_per_process_and_thread_time_limit")?,
                enable_per_process_and_thread_memory_limit: row
                    .try_get("enable_per_process_and_thread_memory_limit")?,
                max_file_size: row.try_get("max_file_size")?,
                redirect_stderr_to_stdout: row.try_get("redirect_stderr_to_stdout")?,
                callback_url: row.try_get("callback_url")?,
                additional_files: row.try_get("additional_files")?,
                enable_network: row.try_get("enable_network")?,
            },
            stdout: row.try_get("stdout")?,
            stderr: row.try_get("stderr")?,
            compile_output: row.try_get("compile_output")?,
            message: row.try_get("message")?,
            status_id: row.try_get("status_id")?,
            exit_code: row.try_get("exit_code")?,
            exit_signal: row.try_get("exit_signal")?,
            time: row.try_get("time")?,
            wall_time: row.try_get("wall_time")?,
            memory: row.try_get("memory")?,
            created_at: row.try_get("created_at")?,
            started_at: row.try_get("started_at")?,
            finished_at: row.try_get("finished_at")?,
            attempts: row.try_get("attempts")?,
            crashes: row.try_get("crashes")?,
            cancel_requested: row.try_get("cancel_requested")?,
        })
    }
}

fn rows(rows: &[Row]) -> Result<Vec<Submission>, DbError> {
    rows.iter().map(|r| Submission::from_row(r).map_err(DbError::from)).collect()
}

/// Stores new submissions in one transaction; returns their tokens.
pub async fn insert(pool: &Pool, subs: &[NewSubmission]) -> Result<Vec<Uuid>, DbError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let stmt = tx
        .prepare_cached(
            "INSERT INTO submissions (token, source_code, language_id, compiler_options, command_line_arguments, \
             stdin, expected_output, number_of_runs, cpu_time_limit, cpu_extra_time, wall_time_limit, memory_limit, \
             stack_limit, max_processes_and_or_threads, enable_per_process_and_thread_time_limit, \
             enable_per_process_and_thread_memory_limit, max_file_size, redirect_stderr_to_stdout, callback_url, \
             additional_files, enable_network) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)",
        )
        .await?;
    let mut tokens = Vec::with_capacity(subs.len());
    for s in subs {
        let token = Uuid::new_v4();
        tx.execute(
            &stmt,
            &[
                &token,
                &s.source_code,
                &s.language_id,
                &s.compiler_options,
                &s.command_line_arguments,
                &s.stdin,
                &s.expected_output,
                &s.number_of_runs,
                &s.cpu_time_limit,
                &s.cpu_extra_time,
                &s.wall_time_limit,
                &s.memory_limit,
                &s.stack_limit,
                &s.max_processes_and_or_threads,
                &s.enable_per_process_and_thread_time_limit,
                &s.enable_per_process_and_thread_memory_limit,
                &s.max_file_size,
                &s.redirect_stderr_to_stdout,
                &s.callback_url,
                &s.additional_files,
                &s.enable_network,
            ],
        )
        .await?;
        tokens.push(token);
    }
    tx.commit().await?;
    Ok(tokens)
}

/// The columns that can be large (text a client sent, output, the zip): a read fetches only
/// those its answer shows.
const LARGE: [&str; 7] =
    ["source_code", "stdin", "expected_output", "stdout", "stderr", "compile_output", "additional_files"];

/// The select list for an answer showing `fields`: every column, but the large ones it does
/// not show come back empty.
fn columns_for(fields: &[&str]) -> String {
    let mut list = COLUMNS.to_owned();
    for column in LARGE {
        if !fields.contains(&column) {
            list = list.replacen(&format!(" {column},"), &format!(" NULL::bytea AS {column},"), 1);
        }
    }
    list
}

/// One submission, with the large columns `fields` shows.
pub async fn get(pool: &Pool, token: Uuid, fields: &[&str]) -> Result<Option<Submission>, DbError> {
    let client = pool.get().await?;
    let stmt = client
        .prepare_cached(&format!("SELECT {} FROM submissions WHERE token = $1", columns_for(fields)))
        .await?;
    let row = client.query_opt(&stmt, &[&token]).await?;
    row.map(|r| Submission::from_row(&r)).transpose().map_err(DbError::from)
}

/// A submission's status, or `None` when there is no such submission.
pub async fn status(pool: &Pool, token: Uuid) -> Result<Option<i32>, DbError> {
    let client = pool.get().await?;
    let stmt = client.prepare_cached("SELECT status_id FROM submissions WHERE token = $1").await?;
    Ok(client.query_opt(&stmt, &[&token]).await?.map(|r| r.try_get(0)).transpose()?)
}

/// Several submissions, in no particular order, with the large columns `fields` shows.
pub async fn get_many(pool: &Pool, tokens: &[Uuid], fields: &[&str]) -> Result<Vec<Submission>, DbError> {
    let client = pool.get().await?;
    let found = client
        .query(&format!("SELECT {} FROM submissions WHERE token = ANY($1)", columns_for(fields)), &[&tokens])
        .await?;
    rows(&found)
}

/// A page of submissions, newest first, and the total count.
pub async fn list(
    pool: &Pool,
    page: i64,
    per_page: i64,
    fields: &[&str],
) -> Result<(Vec<Submission>, i64), DbError> {
    let client = pool.get().await?;
    let offset = (page - 1).saturating_mul(per_page);
    let found = client
        .query(
            &format!("SELECT {} FROM submissions ORDER BY id DESC LIMIT $1 OFFSET $2", columns_for(fields)),
            &[&per_page, &offset],
        )
        .await?;
    let total: i64 = client.query_one("SELECT count(*) FROM submissions", &[]).await?.try_get(0)?;
    Ok((rows(&found)?, total))
}

/// Deletes a finished submission; returns what it was. `Err(Some(status))` when it is not
/// finished, `Err(None)` when there is no such submission.
pub async fn delete(pool: &Pool, token: Uuid) -> Result<Result<Submission, Option<i32>>, DbError> {
    let client = pool.get().await?;
    let deleted = client
        .query_opt(
            &format!(
                "DELETE FROM submissions WHERE token = $1 AND status_id NOT IN (1, 2) RETURNING {COLUMNS}"
            ),
            &[&token],
        )
        .await?;
    if let Some(row) = deleted {
        return Ok(Ok(Submission::from_row(&row)?));
    }
    let status = client.query_opt("SELECT status_id FROM submissions WHERE token = $1", &[&token]).await?;
    Ok(Err(status.map(|r| r.try_get(0)).transpose()?))
}

/// Takes an unfinished submission for running: status Processing, one more attempt, this host.
/// A submission still Processing was being run by a worker that died (or panicked) before a
/// result, not handed back: that counts as a crash. `None` when it is finished, gone, or being
/// cancelled.
pub async fn claim(pool: &Pool, token: Uuid, host: &str) -> Result<Option<Submission>, DbError> {
    let client = pool.get().await?;
    let stmt = client
        .prepare_cached(&format!(
            "UPDATE submissions SET status_id = 2, started_at = now(), execution_host = $2, attempts = attempts + 1, \
             crashes = crashes + (status_id = 2)::int \
             WHERE token = $1 AND status_id IN (1, 2) AND NOT cancel_requested RETURNING {COLUMNS}"
        ))
        .await?;
    let row = client.query_opt(&stmt, &[&token, &host]).await?;
    row.map(|r| Submission::from_row(&r)).transpose().map_err(DbError::from)
}

/// The result of running a submission.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Outcome {
    pub status_id: i32,
    pub stdout: Option<Vec<u8>>,
    pub stderr: Option<Vec<u8>>,
    pub compile_output: Option<Vec<u8>>,
    pub message: Option<String>,
    pub exit_code: Option<i32>,
    pub exit_signal: Option<i32>,
    pub time: Option<f64>,
    pub wall_time: Option<f64>,
    pub memory: Option<i32>,
}

/// Records the result of attempt `attempt`. Only the latest claim of an unfinished submission
/// can finish it, so a submission finishes exactly once even if two workers ran it. Returns the
/// finished submission, or `None` when this attempt lost.
pub async fn finish(
    pool: &Pool,
    token: Uuid,
    attempt: i32,
    o: &Outcome,
) -> Result<Option<Submission>, DbError> {
    let client = pool.get().await?;
    let stmt = client
        .prepare_cached(&format!(
            "UPDATE submissions SET status_id = $3, stdout = $4, stderr = $5, compile_output = $6, message = $7, \
             exit_code = $8, exit_signal = $9, time = $10, wall_time = $11, memory = $12, finished_at = now() \
             WHERE token = $1 AND attempts = $2 AND status_id IN (1, 2) RETURNING {COLUMNS}"
        ))
        .await?;
    let row = client
        .query_opt(
            &stmt,
            &[
                &token,
                &attempt,
                &o.status_id,
                &o.stdout,
                &o.stderr,
                &o.compile_output,
                &o.message,
                &o.exit_code,
                &o.exit_signal,
                &o.time,
                &o.wall_time,
                &o.memory,
            ],
        )
        .await?;
    row.map(|r| Submission::from_row(&r)).transpose().map_err(DbError::from)
}

/// Marks a submission for cancellation. Returns its status before, or `None` if it is finished
/// or unknown.
pub async fn request_cancel(pool: &Pool, token: Uuid) -> Result<Option<i32>, DbError> {
    let client = pool.get().await?;
    let row = client
        .query_opt(
            "UPDATE submissions SET cancel_requested = true WHERE token = $1 AND status_id IN (1, 2) RETURNING status_id",
            &[&token],
        )
        .await?;
    Ok(row.map(|r| r.try_get(0)).transpose()?)
}

/// Finishes a submission marked for cancellation that no worker is running (still queued, or
/// its worker gone). Returns it when this call finished it.
pub async fn finish_cancelled(
    pool: &Pool,
    token: Uuid,
    only_queued: bool,
) -> Result<Option<Submission>, DbError> {
    let client = pool.get().await?;
    let statuses: &[i32] = if only_queued { &[1] } else { &[1, 2] };
    let row = client
        .query_opt(
            &format!(
                "UPDATE submissions SET status_id = 13, message = 'Cancelled', finished_at = now() \
                 WHERE token = $1 AND cancel_requested AND status_id = ANY($2) RETURNING {COLUMNS}"
            ),
            &[&token, &statuses],
        )
        .await?;
    row.map(|r| Submission::from_row(&r)).transpose().map_err(DbError::from)
}

/// Unfinished submissions untouched for `idle_secs` (queued that long, or processing since
/// then): candidates for the sweeper.
pub async fn stale(pool: &Pool, idle_secs: f64, limit: i64) -> Result<Vec<(Uuid, i32)>, DbError> {
    let client = pool.get().await?;
    let found = client
        .query(
            "SELECT token, status_id FROM submissions WHERE status_id IN (1, 2) \
             AND greatest(queued_at, coalesce(started_at, queued_at)) < now() - make_interval(secs => $1) \
             ORDER BY queued_at LIMIT $2",
            &[&idle_secs, &limit],
        )
        .await?;
    found.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect()
}

/// Puts a submission back in the queue's bookkeeping (status In Queue, queued now); `crashed`
/// when the worker running it died.
pub async fn requeued(pool: &Pool, token: Uuid, crashed: bool) -> Result<(), DbError> {
    let client = pool.get().await?;
    client
        .execute(
            "UPDATE submissions SET status_id = 1, queued_at = now(), crashes = crashes + $2::int \
             WHERE token = $1 AND status_id IN (1, 2)",
            &[&token, &i32::from(crashed)],
        )
        .await?;
    Ok(())
}

/// The worker that last took a submission.
pub async fn execution_host(pool: &Pool, token: Uuid) -> Result<Option<String>, DbError> {
    let client = pool.get().await?;
    let row = client.query_opt("SELECT execution_host FROM submissions WHERE token = $1", &[&token]).await?;
    Ok(row.map(|r| r.try_get::<_, Option<String>>(0)).transpose()?.flatten())
}

/// Counts for `/statistics`.
#[derive(Debug, Clone, Default)]
pub struct Statistics {
    pub by_language: Vec<(i32, i64)>,
    pub by_status: Vec<(i32, i64)>,
    pub database_size: i64,
    pub database_size_pretty: String,
}

/// Submission counts by language and status, and the database's size.
pub async fn statistics(pool: &Pool) -> Result<Statistics, DbError> {
    let client = pool.get().await?;
    let pairs = |rows: Vec<Row>| -> Result<Vec<(i32, i64)>, tokio_postgres::Error> {
        rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect()
    };
    let by_language = pairs(
        client
            .query(
                "SELECT language_id, count(*) FROM submissions GROUP BY language_id ORDER BY 2 DESC, 1",
                &[],
            )
            .await?,
    )?;
    let by_status = pairs(
        client
            .query("SELECT status_id, count(*) FROM submissions GROUP BY status_id ORDER BY 1", &[])
            .await?,
    )?;
    let size = client
        .query_one("SELECT pg_database_size(current_database()), pg_size_pretty(pg_database_size(current_database()))", &[])
        .await?;
    Ok(Statistics {
        by_language,
        by_status,
        database_size: size.try_get(0)?,
        database_size_pretty: size.try_get(1)?,
    })
}

/// Whether the database answers.
pub async fn ping(pool: &Pool) -> Result<(), DbError> {
    let client = pool.get().await?;
    client.query_one("SELECT 1", &[]).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fetch_only_the_large_columns_shown() {
        assert_eq!(columns_for(&LARGE), COLUMNS);
        let none = columns_for(&[]);
        assert_eq!(none.matches("NULL::bytea AS").count(), LARGE.len(), "{none}");
        let some = columns_for(&["stdout", "status", "time"]);
        assert_eq!(some.matches("NULL::bytea AS").count(), LARGE.len() - 1, "{some}");
        assert!(some.contains(" stdout,") && some.contains("NULL::bytea AS stderr,"), "{some}");
    }
}
