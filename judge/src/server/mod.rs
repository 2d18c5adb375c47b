//! `judge server`: the Judge0 CE 1.13.1 API over PostgreSQL and the Redis queue.

pub mod answer;
mod auth;
pub mod cors;
pub mod error;
mod info;
mod live;
pub mod params;
mod paths;
mod submissions;
pub mod validate;
pub mod view;

use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::{Router, ServiceExt};
use tokio::net::TcpListener;
use tower::Layer;

use crate::config::ServerConfig;
use crate::events::{self, LiveHub, Waiters};
use crate::languages::Languages;
use crate::metrics::Histogram;
use crate::queue::Redis;
use crate::{db, startup};

/// Counters of this server process.
#[derive(Debug, Default)]
pub struct ServerMetrics {
    /// Submissions accepted.
    pub created: std::sync::atomic::AtomicU64,
    /// From acceptance to the answer of `wait=true` requests.
    pub wait_latency: Histogram,
}

/// What every handler shares.
#[derive(Debug)]
pub struct AppState {
    /// The configuration.
    pub config: ServerConfig,
    /// PostgreSQL.
    pub db: deadpool_postgres::Pool,
    /// Redis.
    pub redis: Redis,
    /// Languages, with the versions workers reported.
    pub languages: RwLock<Languages>,
    /// Requests waiting for submissions.
    pub waiters: Waiters,
    /// Counters.
    pub metrics: ServerMetrics,
    /// `/statistics`, cached: (computed at, body).
    pub statistics: tokio::sync::Mutex<Option<(std::time::Instant, serde_json::Value)>>,
    /// Bounds on reads of submissions.
    pub bounds: answer::Bounds,
    /// Live events for the event streams.
    pub live: LiveHub,
    /// Places for event streams.
    pub event_streams: Arc<tokio::sync::Semaphore>,
}

impl AppState {
    /// A snapshot of the languages.
    pub fn languages(&self) -> Languages {
        self.languages.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

/// The API's routes, by their plain paths ([`run`] adds CORS and the paths' other spellings).
pub fn router(state: Arc<AppState>) -> Router {
    let body_limit = state.config.max_request_body_kb.saturating_mul(1024);
    let api = Router::new()
        .route("/submissions", post(submissions::create).get(submissions::index))
        .route("/submissions/batch", post(submissions::create_batch).get(submissions::show_batch))
        .route("/submissions/{token}", get(submissions::show).delete(submissions::destroy))
        .route("/submissions/{token}/events", get(live::events))
        .route("/submissions/{token}/cancel", post(submissions::cancel))
        .route("/languages", get(info::languages))
        .route("/languages/all", get(info::all_languages))
        .route("/languages/{id}", get(info::language))
        .route("/statuses", get(info::statuses))
        .route("/about", get(info::about))
        .route("/version", get(info::version))
        .route("/license", get(info::license))
        .route("/isolate", get(info::isolate))
        .route("/config_info", get(info::config_info))
        .route("/system_info", get(info::system_info))
        .route("/statistics", get(info::statistics))
        .route("/workers", get(info::workers))
        .route("/authenticate", post(auth::authenticate))
        .route("/authorize", post(auth::authorize))
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::authenticate_layer));
    Router::new()
        .route("/", get(info::home))
        .route("/healthz", get(info::healthz))
        .route("/metrics", get(info::metrics))
        .merge(api)
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

/// Serves the API on `listener` until `shutdown` completes, then drains in-flight requests.
pub async fn run(
    listener: TcpListener,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (db, redis, mut languages) = startup::connect(&config.connections, db::Durability::Flushed).await?;
    if let Ok(versions) = redis.language_versions().await {
        languages.set_versions(versions);
    }
    let (live, live_commands) = LiveHub::new();
    let state = Arc::new(AppState {
        bounds: answer::Bounds::new(config.max_concurrent_reads, config.answer_budget_mb),
        event_streams: Arc::new(tokio::sync::Semaphore::new(config.max_event_streams)),
        config,
        db,
        redis: redis.clone(),
        languages: RwLock::new(languages),
        waiters: Waiters::default(),
        metrics: ServerMetrics::default(),
        statistics: tokio::sync::Mutex::new(None),
        live: live.clone(),
    });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(events::dispatch(redis.clone(), state.waiters.clone(), stop_rx.clone()));
    tokio::spawn(live.run(redis.clone(), live_commands, stop_rx.clone()));
    tokio::spawn(refresh_languages(state.clone(), stop_rx));
    // Judge0 answers cross-origin requests before anything else (`Rack::Cors` is first in its
    // stack), then Rails routes the paths' other spellings. Both wrap the whole router: a layer
    // added with `Router::layer` would run after routing.
    let cors = Arc::new(cors::Cors::new(&state.config.allow_origin, &state.config.disallow_origin));
    let routed = axum::middleware::map_request(paths::rewrite).layer(router(state));
    let app = axum::middleware::from_fn_with_state(cors, cors::layer).layer(routed);
    tracing::info!(addr = %listener.local_addr()?, "Judge server listening.");
    axum::serve(listener, app.into_make_service()).with_graceful_shutdown(shutdown).await?;
    let _ = stop_tx.send(true);
    Ok(())
}

/// Picks up language versions as workers report them: every second until the first report
/// (a server usually starts before its workers), then every ten.
async fn refresh_languages(state: Arc<AppState>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut reported = false;
    loop {
        let period = Duration::from_secs(if reported { 10 } else { 1 });
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = stop.changed() => return,
        }
        if let Ok(versions) = state.redis.language_versions().await {
            reported |= !versions.is_empty();
            state.languages.write().unwrap_or_else(std::sync::PoisonError::into_inner).set_versions(versions);
        }
    }
}

/// Re-export for handlers.
pub(crate) use db::Submission;
