//! The library half of `xtask`: what both the developer's commands and other crates' integration
//! tests need, chiefly real local services (Redis, PostgreSQL) started from local binaries.
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! let dir = tempfile::tempdir()?;
//! let redis = xtask::services::Redis::start(&dir.path().join("redis"), 0)?;
//! let postgres = xtask::services::Postgres::start(&dir.path().join("postgres"), 0, "judge")?;
//! println!("{} {}", redis.url(), postgres.url());
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

pub mod process;
pub mod services;
