//! Upstream pools: their backends' health, requests in flight, and the choice of a backend.

use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::config::{HealthCheck, PoolConfig, Selection};

/// One backend of a pool.
#[derive(Debug)]
pub struct Backend {
    /// Where it listens.
    pub addr: SocketAddr,
    healthy: AtomicBool,
    in_flight: AtomicUsize,
    failures: AtomicU32,
    passes: AtomicU32,
}

impl Backend {
    fn new(addr: SocketAddr) -> Self {
        // Until the first check says otherwise, a backend is assumed up, so traffic flows from
        // the first request.
        Self {
            addr,
            healthy: AtomicBool::new(true),
            in_flight: AtomicUsize::new(0),
            failures: AtomicU32::new(0),
            passes: AtomicU32::new(0),
        }
    }

    /// Whether it receives new requests.
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Requests it is serving now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Records a health check; returns the new health if it changed.
    fn record(&self, passed: bool, rule: &HealthCheck) -> Option<bool> {
        if passed {
            self.failures.store(0, Ordering::Relaxed);
            let passes = self.passes.fetch_add(1, Ordering::Relaxed) + 1;
            if !self.is_healthy() && passes >= rule.healthy_after {
                self.healthy.store(true, Ordering::Relaxed);
                return Some(true);
            }
        } else {
            self.passes.store(0, Ordering::Relaxed);
            let failures = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
            if self.is_healthy() && failures >= rule.unhealthy_after {
                self.healthy.store(false, Ordering::Relaxed);
                return Some(false);
            }
        }
        None
    }
}

/// A request's hold on a backend: counts it in flight until dropped.
#[derive(Debug)]
pub struct Lease {
    pool: Arc<Pool>,
    index: usize,
}

impl Lease {
    /// The backend held.
    pub fn backend(&self) -> &Backend {
        &self.pool.backends[self.index]
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.backend().in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A pool of backends.
#[derive(Debug)]
pub struct Pool {
    /// The configuration.
    pub config: PoolConfig,
    /// The backends, in configuration order.
    pub backends: Vec<Backend>,
    next: AtomicUsize,
}

fn rendezvous_score(key: &[u8], addr: &SocketAddr) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    addr.hash(&mut h);
    h.finish()
}

impl Pool {
    /// A pool with every backend assumed healthy.
    pub fn new(config: PoolConfig) -> Self {
        let backends = config.backends.iter().map(|a| Backend::new(*a)).collect();
        Self { config, backends, next: AtomicUsize::new(0) }
    }

    /// Healthy backends not in `exclude`, by index, in configuration order.
    fn candidates<'a>(&'a self, exclude: &'a [usize]) -> impl Iterator<Item = usize> + Clone + 'a {
        (0..self.backends.len()).filter(move |i| self.backends[*i].is_healthy() && !exclude.contains(i))
    }

    /// Picks a backend for a request: healthy, not already tried (`exclude`); `key` drives
    /// consistent hashing. `None` when none is left.
    pub fn pick(&self, key: &[u8], exclude: &[usize]) -> Option<usize> {
        // Every request comes here: the candidates are walked, never collected.
        let candidates = self.candidates(exclude);
        let count = candidates.clone().count();
        if count == 0 {
            return None;
        }
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        match self.config.selection {
            Selection::RoundRobin => candidates.clone().nth(turn % count),
            Selection::LeastConnections => {
                // Fewest in flight; ties broken in turn so equal backends share the load.
                let start = turn % count;
                let rotated = candidates.clone().skip(start).chain(candidates.take(start));
                rotated.min_by_key(|i| self.backends[*i].in_flight())
            }
            Selection::ConsistentHash => {
                candidates.max_by_key(|i| rendezvous_score(key, &self.backends[*i].addr))
            }
        }
    }

    /// Counts a request on backend `i` until the lease is dropped.
    pub fn lease(self: &Arc<Self>, i: usize) -> Lease {
        self.backends[i].in_flight.fetch_add(1, Ordering::Relaxed);
        Lease { pool: self.clone(), index: i }
    }

    /// Healthy backends now.
    pub fn healthy_count(&self) -> usize {
        self.backends.iter().filter(|b| b.is_healthy()).count()
    }

    /// Checks every backend at once and records the results; returns the backends whose
    /// health changed, with their new health.
    pub async fn check_all(&self) -> Vec<(SocketAddr, bool)> {
        let rule = &self.config.health;
        let checks = self.backends.iter().map(|b| async move { (b, probe(b.addr, rule).await) });
        let results = futures_util::future::join_all(checks).await;
        results
            .into_iter()
            .filter_map(|(b, passed)| b.record(passed, rule).map(|now| (b.addr, now)))
            .collect()
    }
}

/// One health check: `GET path` answered 2xx or 3xx within the timeout.
pub async fn probe(addr: SocketAddr, rule: &HealthCheck) -> bool {
    matches!(tokio::time::timeout(rule.timeout, status_of(addr, &rule.path)).await, Ok(Ok(code)) if (200..400).contains(&code))
}

async fn status_of(addr: SocketAddr, path: &str) -> std::io::Result<u16> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: verdict-gateway-health\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut head = [0u8; 64];
    let mut len = 0;
    while len < 12 {
        let n = stream.read(&mut head[len..]).await?;
        if n == 0 {
            break;
        }
        len += n;
    }
    // "HTTP/1.1 200 ..."
    std::str::from_utf8(&head[..len])
        .ok()
        .and_then(|s| s.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "not an HTTP response"))
}

/// How long to wait before the next round of checks.
pub fn interval(pools: &[std::sync::Arc<Pool>]) -> Duration {
    pools.iter().map(|p| p.config.health.interval).min().unwrap_or(Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(selection: Selection, n: usize) -> Pool {
        let backends = (0..n).map(|i| format!("127.0.0.1:{}", 10_000 + i).parse().unwrap()).collect();
        Pool::new(PoolConfig {
            name: "p".into(),
            backends,
            selection,
            hash_header: None,
            connect_timeout: Duration::from_secs(1),
            read_timeout: Duration::from_secs(1),
            retries: 2,
            health: HealthCheck {
                path: "/".into(),
                interval: Duration::from_secs(1),
                timeout: Duration::from_millis(500),
                unhealthy_after: 2,
                healthy_after: 2,
            },
        })
    }

    #[test]
    fn round_robin_takes_turns_and_skips_the_unhealthy_and_the_tried() {
        let p = pool(Selection::RoundRobin, 3);
        let picks: Vec<usize> = (0..6).map(|_| p.pick(b"", &[]).unwrap()).collect();
        assert_eq!(picks, vec![0, 1, 2, 0, 1, 2]);
        p.backends[1].healthy.store(false, Ordering::Relaxed);
        assert!((0..10).all(|_| p.pick(b"", &[]) != Some(1)));
        assert_eq!(p.pick(b"", &[0, 2]), None);
        assert!((0..4).all(|_| p.pick(b"", &[0]) == Some(2)));
    }

    #[test]
    fn least_connections_prefers_the_idle_backend() {
        let p = Arc::new(pool(Selection::LeastConnections, 3));
        let _busy0 = p.lease(0);
        let _busy2 = p.lease(2);
        let _busy2b = p.lease(2);
        assert!((0..5).all(|_| p.pick(b"", &[]) == Some(1)));
        drop(_busy0);
        let next = p.pick(b"", &[]).unwrap();
        assert!(next == 0 || next == 1);
    }

    #[test]
    fn consistent_hashing_keeps_keys_in_place_and_moves_few() {
        let p = pool(Selection::ConsistentHash, 4);
        let keys: Vec<String> = (0..200).map(|i| format!("user-{i}")).collect();
        let before: Vec<usize> = keys.iter().map(|k| p.pick(k.as_bytes(), &[]).unwrap()).collect();
        let again: Vec<usize> = keys.iter().map(|k| p.pick(k.as_bytes(), &[]).unwrap()).collect();
        assert_eq!(before, again);
        p.backends[3].healthy.store(false, Ordering::Relaxed);
        let after: Vec<usize> = keys.iter().map(|k| p.pick(k.as_bytes(), &[]).unwrap()).collect();
        for (b, a) in before.iter().zip(&after) {
            if *b != 3 {
                assert_eq!(b, a, "a key moved that was not on the removed backend");
            }
        }
        let spread = (0..3).map(|i| after.iter().filter(|b| **b == i).count()).min().unwrap();
        assert!(spread > 30, "keys are spread: min {spread}");
    }

    #[test]
    fn health_changes_after_consecutive_results() {
        let p = pool(Selection::RoundRobin, 1);
        let b = &p.backends[0];
        let rule = &p.config.health;
        assert_eq!(b.record(false, rule), None);
        assert_eq!(b.record(true, rule), None);
        assert_eq!(b.record(false, rule), None);
        assert_eq!(b.record(false, rule), Some(false));
        assert_eq!(b.record(true, rule), None);
        assert_eq!(b.record(true, rule), Some(true));
    }
}
