//! The judge: `judge server` speaks the Judge0 CE 1.13.1 API and `judge worker` runs the
//! submissions, any number of each sharing one PostgreSQL (the truth about submissions) and
//! one Redis (the queue, live events, heartbeats).

pub mod archive;
pub mod config;
pub mod db;
pub mod events;
pub mod format;
pub use judge_languages as languages;
pub mod metrics;
pub mod queue;
pub mod server;
mod startup;
pub mod worker;
