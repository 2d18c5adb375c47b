//! Redis: the submission queue, worker heartbeats, live events and shared counters.
//!
//! The queue is a stream with one consumer group. A worker reads an entry (it then sits in the
//! worker's pending list), runs the submission, commits the result to PostgreSQL, and only
//! then acknowledges and deletes the entry. Entries pending on a worker that stopped renewing
//! them are claimed by another worker; submissions PostgreSQL says are unfinished but that the
//! stream no longer holds (Redis lost them) are queued again by the sweeper.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use deadpool_redis::{Config, Pool, Runtime};
use judge_wire::Envelope;
use redis::{AsyncCommands, AsyncConnectionConfig, RedisResult, Value, aio::MultiplexedConnection};
use serde::{Deserialize, Serialize};

use crate::metrics::{BUCKETS, Histogram};

/// The stream of queued submission tokens.
pub const STREAM: &str = "judge:queue";
/// The consumer group every worker reads through.
pub const GROUP: &str = "workers";
/// Channel announcing finished submissions (payload: the token).
pub const DONE_CHANNEL: &str = "judge:done";
/// Channel telling workers to cancel a running submission (payload: the token).
pub const CANCEL_CHANNEL: &str = "judge:cancel";
/// Hash of language id → the version installed on the workers.
pub const LANGUAGES: &str = "judge:languages";
/// Hash of status id → submissions finished with it.
pub const FINISHED: &str = "judge:finished";
const HEARTBEAT_PREFIX: &str = "judge:worker:";
const SWEEP_LOCK: &str = "judge:sweeper";
const LATENCY_PREFIX: &str = "judge:latency:";

/// Per-submission channel of live events (JSON `Envelope`s).
pub fn live_channel(token: &str) -> String {
    format!("judge:live:{token}")
}

/// A Redis failure.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The URL is unusable.
    #[error("invalid REDIS_URL: {0}")]
    Url(String),
    /// No connection could be had.
    #[error("no Redis connection: {0}")]
    Pool(#[from] deadpool_redis::PoolError),
    /// A command failed.
    #[error("Redis command failed: {0}")]
    Command(#[from] redis::RedisError),
}

/// Shared access to Redis: a pool for ordinary commands and the client for dedicated
/// (blocking, pub/sub) connections.
#[derive(Clone)]
pub struct Redis {
    pool: Pool,
    client: redis::Client,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis").finish_non_exhaustive()
    }
}

/// A queued submission as a worker reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The stream entry id.
    pub id: String,
    /// The submission's token.
    pub token: String,
}

/// What a worker says about itself every few seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The worker's name.
    pub name: String,
    /// Submissions it can run at once.
    pub concurrency: usize,
    /// Submissions it is running.
    pub running: usize,
    /// Whether it is shutting down (takes no new work).
    pub stopping: bool,
    /// The language ids (aliases included) whose toolchains it has.
    #[serde(default)]
    pub languages: Vec<i32>,
}

impl Redis {
    /// Connects lazily: nothing is dialled until the first command.
    pub fn new(url: &str, pool_size: usize) -> Result<Self, QueueError> {
        let client = redis::Client::open(url).map_err(|e| QueueError::Url(e.to_string()))?;
        let pool = Config::from_url(url)
            .builder()
            .map_err(|e| QueueError::Url(e.to_string()))?
            .max_size(pool_size)
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| QueueError::Url(e.to_string()))?;
        Ok(Self { pool, client })
    }

    async fn conn(&self) -> Result<deadpool_redis::Connection, QueueError> {
        Ok(self.pool.get().await?)
    }

    /// A dedicated connection whose replies may take up to `timeout` (for blocking reads).
    pub async fn dedicated(&self, timeout: Duration) -> Result<MultiplexedConnection, QueueError> {
        let config = AsyncConnectionConfig::new()
            .set_response_timeout(Some(timeout))
            .set_connection_timeout(Some(Duration::from_secs(2)));
        Ok(self.client.get_multiplexed_async_connection_with_config(&config).await?)
    }

    /// A pub/sub connection.
    pub async fn pubsub(&self) -> Result<redis::aio::PubSub, QueueError> {
        Ok(self.client.get_async_pubsub().await?)
    }

    /// Whether Redis answers.
    pub async fn ping(&self) -> Result<(), QueueError> {
        let mut c = self.conn().await?;
        let _: String = redis::cmd("PING").query_async(&mut c).await?;
        Ok(())
    }

    /// Creates the consumer group (and the stream) if missing.
    pub async fn ensure_group(&self) -> Result<(), QueueError> {
        let mut c = self.conn().await?;
        ensure_group(&mut c).await
    }

    /// Queues tokens, in order.
    pub async fn enqueue(&self, tokens: &[String]) -> Result<(), QueueError> {
        let mut c = self.conn().await?;
        let mut pipe = redis::pipe();
        for t in tokens {
            pipe.cmd("XADD").arg(STREAM).arg("*").arg("token").arg(t).ignore();
        }
        let () = pipe.query_async(&mut c).await?;
        Ok(())
    }

    /// Entries in the stream: queued plus being run.
    pub async fn depth(&self) -> Result<u64, QueueError> {
        let mut c = self.conn().await?;
        Ok(c.xlen(STREAM).await?)
    }

    /// Acknowledges and removes a finished entry.
    pub async fn ack(&self, id: &str) -> Result<(), QueueError> {
        let mut c = self.conn().await?;
        let () = redis::pipe()
            .cmd("XACK")
            .arg(STREAM)
            .arg(GROUP)
            .arg(id)
            .ignore()
            .cmd("XDEL")
            .arg(STREAM)
            .arg(id)
            .ignore()
            .query_async(&mut c)
            .await?;
        Ok(())
    }

    /// Renews entries this consumer holds, so no other worker takes them over.
    pub async fn touch(&self, consumer: &str, ids: &[String]) -> Result<(), QueueError> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut c = self.conn().await?;
        let _: Value = redis::cmd("XCLAIM")
            .arg(STREAM)
            .arg(GROUP)
            .arg(consumer)
            .arg(0)
            .arg(ids)
            .arg("JUSTID")
            .query_async(&mut c)
            .await?;
        Ok(())
    }

    /// Takes over entries nobody renewed for `min_idle`.
    pub async fn reclaim(
        &self,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> Result<Vec<Entry>, QueueError> {
        let mut c = self.conn().await?;
        let reply: Value = match redis::cmd("XAUTOCLAIM")
            .arg(STREAM)
            .arg(GROUP)
            .arg(consumer)
            .arg(min_idle.as_millis() as u64)
            .arg("0-0")
            .arg("COUNT")
            .arg(count)
            .query_async(&mut c)
            .await
        {
            Ok(v) => v,
            Err(e) if e.code() == Some("NOGROUP") => {
                ensure_group(&mut c).await?;
                return Ok(Vec::new());
            }
            Err(e) => return Err(e.into()),
        };
        // [next-id, [[id, [field, value, ...]], ...], [deleted ids]]
        let Value::Array(parts) = reply else { return Ok(Vec::new()) };
        Ok(parts.get(1).map(parse_entries).unwrap_or_default())
    }

    /// Every token currently in the stream (queued or being run).
    pub async fn tokens_in_stream(&self) -> Result<HashSet<String>, QueueError> {
        let mut c = self.conn().await?;
        let reply: Value = redis::cmd("XRANGE").arg(STREAM).arg("-").arg("+").query_async(&mut c).await?;
        Ok(parse_entries(&reply).into_iter().map(|e| e.token).collect())
    }

    /// Takes the sweeper's lock for `ttl` if no one holds it.
    pub async fn try_sweep_lock(&self, owner: &str, ttl: Duration) -> Result<bool, QueueError> {
        let mut c = self.conn().await?;
        let set: Option<String> = redis::cmd("SET")
            .arg(SWEEP_LOCK)
            .arg(owner)
            .arg("NX")
            .arg("PX")
            .arg(ttl.as_millis() as u64)
            .query_async(&mut c)
            .await?;
        Ok(set.is_some())
    }

    /// Publishes a worker's heartbeat, valid for `ttl`.
    pub async fn heartbeat(&self, beat: &Heartbeat, ttl: Duration) -> Result<(), QueueError> {
        let mut c = self.conn().await?;
        let json = serde_json::to_string(beat).unwrap_or_default();
        let () = c.set_ex(format!("{HEARTBEAT_PREFIX}{}", beat.name), json, ttl.as_secs().max(1)).await?;
        Ok(())
    }

    /// Removes a worker's heartbeat (it stopped).
    pub async fn forget_worker(&self, name: &str) -> Result<(), QueueError> {
        let mut c = self.conn().await?;
        let () = c.del(format!("{HEARTBEAT_PREFIX}{name}")).await?;
        Ok(())
    }

    /// Heartbeats of every live worker.
    pub async fn workers(&self) -> Result<Vec<Heartbeat>, QueueError> {
        let mut c = self.conn().await?;
        let mut keys: Vec<String> = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{HEARTBEAT_PREFIX}*"))
                .arg("COUNT")
                .arg(500)
                .query_async(&mut c)
                .await?;
            keys.extend(batch);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let values: Vec<Option<String>> = c.mget(&keys).await?;
        let mut beats: Vec<Heartbeat> =
            values.into_iter().flatten().filter_map(|v| serde_json::from_str(&v).ok()).collect();
        beats.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(beats)
    }

    /// Whether a worker's heartbeat is current.
    pub async fn worker_alive(&self, name: &str) -> Result<bool, QueueError> {
        let mut c = self.conn().await?;
        Ok(c.exists(format!("{HEARTBEAT_PREFIX}{name}")).await?)
    }

    /// Publishes a live event on the submission's channel.
    pub async fn publish(&self, envelope: &Envelope) -> Result<(), QueueError> {
        let mut c = self.conn().await?;
        let json = serde_json::to_string(envelope).unwrap_or_default();
        let () = c.publish(live_channel(&envelope.token), json).await?;
        Ok(())
    }

    /// Announces that a submission is finished, and counts it by status.
    pub async fn announce_done(&self, token: &str, status_id: i32) -> Result<(), QueueError> {
        let mut c = self.conn().await?;
        let () = redis::pipe()
            .cmd("PUBLISH")
            .arg(DONE_CHANNEL)
            .arg(token)
            .ignore()
            .cmd("HINCRBY")
            .arg(FINISHED)
            .arg(status_id)
            .arg(1)
            .ignore()
            .query_async(&mut c)
            .await?;
        Ok(())
    }

    /// Asks the worker running a submission to stop it.
    pub async fn request_cancel(&self, token: &str) -> Result<(), QueueError> {
        let mut c = self.conn().await?;
        let () = c.publish(CANCEL_CHANNEL, token).await?;
        Ok(())
    }

    /// Records the language versions a worker found installed.
    pub async fn set_language_versions(&self, versions: &HashMap<i32, String>) -> Result<(), QueueError> {
        if versions.is_empty() {
            return Ok(());
        }
        let mut c = self.conn().await?;
        let items: Vec<(i32, &String)> = versions.iter().map(|(k, v)| (*k, v)).collect();
        let () = c.hset_multiple(LANGUAGES, &items).await?;
        Ok(())
    }

    /// The language versions workers reported.
    pub async fn language_versions(&self) -> Result<HashMap<i32, String>, QueueError> {
        let mut c = self.conn().await?;
        Ok(c.hgetall(LANGUAGES).await?)
    }

    /// Records a latency in the cluster-wide histogram `name`.
    pub async fn observe_latency(&self, name: &str, seconds: f64) -> Result<(), QueueError> {
        let bucket =
            BUCKETS.iter().position(|b| seconds <= *b).map_or_else(|| "inf".to_owned(), |i| i.to_string());
        let key = format!("{LATENCY_PREFIX}{name}");
        let mut c = self.conn().await?;
        let () = redis::pipe()
            .cmd("HINCRBY")
            .arg(&key)
            .arg(bucket)
            .arg(1)
            .ignore()
            .cmd("HINCRBY")
            .arg(&key)
            .arg("count")
            .arg(1)
            .ignore()
            .cmd("HINCRBYFLOAT")
            .arg(&key)
            .arg("sum")
            .arg(seconds)
            .ignore()
            .query_async(&mut c)
            .await?;
        Ok(())
    }

    /// The cluster-wide histogram `name`.
    pub async fn latency(&self, name: &str) -> Result<Histogram, QueueError> {
        let mut c = self.conn().await?;
        let raw: HashMap<String, String> = c.hgetall(format!("{LATENCY_PREFIX}{name}")).await?;
        let mut counts = [0u64; BUCKETS.len()];
        for (i, cell) in counts.iter_mut().enumerate() {
            *cell = raw.get(&i.to_string()).and_then(|v| v.parse().ok()).unwrap_or(0);
        }
        let count = raw.get("count").and_then(|v| v.parse().ok()).unwrap_or(0);
        let sum = raw.get("sum").and_then(|v| v.parse().ok()).unwrap_or(0.0);
        Ok(Histogram::from_counts(&counts, count, sum))
    }

    /// Submissions finished, by status id, since Redis's data began.
    pub async fn finished_counts(&self) -> Result<HashMap<i32, u64>, QueueError> {
        let mut c = self.conn().await?;
        Ok(c.hgetall(FINISHED).await?)
    }
}

async fn ensure_group<C: redis::aio::ConnectionLike + Send>(c: &mut C) -> Result<(), QueueError> {
    let created: RedisResult<Value> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(STREAM)
        .arg(GROUP)
        .arg("0")
        .arg("MKSTREAM")
        .query_async(c)
        .await;
    match created {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Reads one new entry for `consumer`, waiting up to `block`. Uses a dedicated connection
/// (see [`Redis::dedicated`]).
pub async fn read_one(
    conn: &mut MultiplexedConnection,
    consumer: &str,
    block: Duration,
) -> Result<Option<Entry>, QueueError> {
    let reply: RedisResult<Value> = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg(GROUP)
        .arg(consumer)
        .arg("COUNT")
        .arg(1)
        .arg("BLOCK")
        .arg(block.as_millis() as u64)
        .arg("STREAMS")
        .arg(STREAM)
        .arg(">")
        .query_async(conn)
        .await;
    let reply = match reply {
        Ok(v) => v,
        Err(e) if e.code() == Some("NOGROUP") => {
            // Redis lost its data (restarted without persistence): start over.
            ensure_group(conn).await?;
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    };
    // [[stream, [[id, [field, value, ...]], ...]]] or nil
    let Value::Array(streams) = reply else { return Ok(None) };
    let Some(Value::Array(stream)) = streams.into_iter().next() else { return Ok(None) };
    Ok(stream.get(1).map(parse_entries).unwrap_or_default().into_iter().next())
}

/// Parses `[[id, [field, value, ...]], ...]` into entries with a token field.
fn parse_entries(v: &Value) -> Vec<Entry> {
    let Value::Array(items) = v else { return Vec::new() };
    items
        .iter()
        .filter_map(|item| {
            let Value::Array(pair) = item else { return None };
            let id = string(pair.first()?)?;
            let Value::Array(fields) = pair.get(1)? else { return None };
            let token = fields.chunks(2).find_map(|kv| {
                (string(kv.first()?)? == "token").then(|| kv.get(1).and_then(string)).flatten()
            })?;
            Some(Entry { id, token })
        })
        .collect()
}

fn string(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn stream_replies_parse_into_entries() {
        let v = Value::Array(vec![
            Value::Array(vec![bulk("1-0"), Value::Array(vec![bulk("token"), bulk("abc")])]),
            Value::Array(vec![
                bulk("2-0"),
                Value::Array(vec![bulk("other"), bulk("x"), bulk("token"), bulk("def")]),
            ]),
            Value::Array(vec![bulk("3-0"), Value::Nil]),
        ]);
        assert_eq!(
            parse_entries(&v),
            vec![
                Entry { id: "1-0".into(), token: "abc".into() },
                Entry { id: "2-0".into(), token: "def".into() }
            ]
        );
    }
}
