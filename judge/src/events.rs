//! Completion notifications on the server side: one Redis subscription per server process,
//! fanned out to the requests waiting for a submission (`wait=true`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::oneshot;

use crate::queue::{DONE_CHANNEL, Redis};

/// Requests waiting for submissions to finish.
#[derive(Debug, Default, Clone)]
pub struct Waiters {
    inner: Arc<Mutex<HashMap<String, Vec<oneshot::Sender<()>>>>>,
}

/// One request's wait for one submission.
#[derive(Debug)]
pub struct Waiter {
    rx: oneshot::Receiver<()>,
    token: String,
    waiters: Waiters,
}

impl Waiter {
    /// Resolves when the submission may have finished (or the notification stream was
    /// interrupted, so the caller should look again).
    pub async fn notified(&mut self) {
        let _ = (&mut self.rx).await;
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        self.rx.close();
        let mut map = self.waiters.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(list) = map.get_mut(&self.token) {
            list.retain(|tx| !tx.is_closed());
            if list.is_empty() {
                map.remove(&self.token);
            }
        }
    }
}

impl Waiters {
    /// Starts waiting for `token`; register before the submission can finish.
    pub fn register(&self, token: &str) -> Waiter {
        let (tx, rx) = oneshot::channel();
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(token.to_owned())
            .or_default()
            .push(tx);
        Waiter { rx, token: token.to_owned(), waiters: self.clone() }
    }

    fn notify(&self, token: &str) {
        let senders = self.inner.lock().unwrap_or_else(PoisonError::into_inner).remove(token);
        for tx in senders.into_iter().flatten() {
            let _ = tx.send(());
        }
    }

    /// Wakes everyone: after the subscription was interrupted, any of them may have missed
    /// their notification.
    fn notify_all(&self) {
        let all = std::mem::take(&mut *self.inner.lock().unwrap_or_else(PoisonError::into_inner));
        for tx in all.into_values().flatten() {
            let _ = tx.send(());
        }
    }

    /// How many requests are waiting.
    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).values().map(Vec::len).sum()
    }

    /// Whether no request is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Listens for finished submissions until `shutdown`, reconnecting to Redis as needed.
pub async fn dispatch(redis: Redis, waiters: Waiters, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let connected = async {
            let mut pubsub = redis.pubsub().await?;
            pubsub.subscribe(DONE_CHANNEL).await?;
            Ok::<_, crate::queue::QueueError>(pubsub)
        }
        .await;
        match connected {
            Ok(pubsub) => {
                backoff = Duration::from_millis(100);
                // Anything that finished while we were not listening: let its waiters look.
                waiters.notify_all();
                let mut messages = pubsub.into_on_message();
                loop {
                    tokio::select! {
                        msg = messages.next() => match msg {
                            Some(msg) => {
                                if let Ok(token) = msg.get_payload::<String>() {
                                    waiters.notify(&token);
                                }
                            }
                            None => break,
                        },
                        _ = shutdown.changed() => return,
                    }
                }
                tracing::warn!("Lost the Redis subscription for finished submissions; reconnecting.");
                waiters.notify_all();
            }
            Err(error) => {
                tracing::warn!(%error, "Cannot subscribe to finished submissions; retrying.");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.changed() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn notifications_reach_every_waiter_of_a_token_and_dropped_waiters_leave() {
        let w = Waiters::default();
        let mut a = w.register("t1");
        let mut b = w.register("t1");
        let c = w.register("t2");
        assert_eq!(w.len(), 3);
        w.notify("t1");
        a.notified().await;
        b.notified().await;
        drop(c);
        assert_eq!(w.len(), 0);
        let mut d = w.register("t3");
        w.notify_all();
        d.notified().await;
    }
}
