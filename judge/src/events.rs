//! Notifications on the server side, each from one Redis subscription per server process,
//! fanned out: completions to the requests waiting for a submission (`wait=true`), live events
//! to the event streams watching it (`LiveHub`).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot, watch};

use crate::queue::{DONE_CHANNEL, Redis, live_channel};

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

/// Bytes of live events one stream may have waiting; a stream further behind is dropped.
pub const LIVE_BUFFER_BYTES: usize = 256 * 1024;
/// Events one stream may have waiting.
const LIVE_BUFFER_EVENTS: usize = 1024;
/// Longest a new stream waits for its subscription to be in place.
const SUBSCRIBE_WAIT: Duration = Duration::from_secs(5);

/// What a live subscription receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveMessage {
    /// An event as the worker published it (a JSON `Envelope`).
    Event(Arc<str>),
    /// The subscription was interrupted: events may have been missed, look at the row again.
    Gap,
}

#[derive(Debug)]
struct Subscriber {
    id: u64,
    tx: mpsc::Sender<LiveMessage>,
    /// Bytes sent and not yet taken.
    queued: Arc<AtomicUsize>,
}

/// A request to the hub's subscription task.
#[derive(Debug)]
pub enum Command {
    /// Subscribe to a token's channel if not already; answer when in place.
    Watch(String, oneshot::Sender<()>),
    /// Unsubscribe from a token's channel if nobody watches it any more.
    Forget(String),
}

#[derive(Debug)]
struct HubState {
    watchers: Mutex<HashMap<String, Vec<Subscriber>>>,
    commands: mpsc::UnboundedSender<Command>,
    next_id: AtomicU64,
    /// Streams dropped for falling behind.
    dropped: AtomicU64,
}

/// Live events of running submissions for the event streams of one server process: one Redis
/// connection subscribed to the channels of the tokens being watched, fanned out. Each stream
/// has a bounded buffer ([`LIVE_BUFFER_BYTES`]) and is dropped when it falls behind, so a
/// client that never reads costs that much and no more, and no stream costs Redis a
/// connection.
#[derive(Debug, Clone)]
pub struct LiveHub {
    state: Arc<HubState>,
}

/// One stream's subscription; dropping it ends the watch.
#[derive(Debug)]
pub struct LiveSubscription {
    token: String,
    id: u64,
    rx: mpsc::Receiver<LiveMessage>,
    queued: Arc<AtomicUsize>,
    hub: LiveHub,
}

impl LiveSubscription {
    /// The next message; `None` when the stream was dropped for falling behind (or the hub
    /// is gone).
    pub async fn next(&mut self) -> Option<LiveMessage> {
        let message = self.rx.recv().await?;
        if let LiveMessage::Event(payload) = &message {
            self.queued.fetch_sub(payload.len(), Ordering::Relaxed);
        }
        Some(message)
    }
}

impl Drop for LiveSubscription {
    fn drop(&mut self) {
        self.hub.remove(&self.token, self.id);
    }
}

impl LiveHub {
    /// A hub and the task that keeps its Redis subscription (run it with [`LiveHub::run`]).
    pub fn new() -> (Self, mpsc::UnboundedReceiver<Command>) {
        let (commands, rx) = mpsc::unbounded_channel();
        let state = HubState {
            watchers: Mutex::default(),
            commands,
            next_id: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        };
        (Self { state: Arc::new(state) }, rx)
    }

    /// Starts watching `token`; returns once the subscription is in place (or, while Redis is
    /// away, once it will be: a [`LiveMessage::Gap`] follows then).
    pub async fn subscribe(&self, token: &str) -> LiveSubscription {
        let (tx, rx) = mpsc::channel(LIVE_BUFFER_EVENTS);
        let queued = Arc::new(AtomicUsize::new(0));
        let id = self.state.next_id.fetch_add(1, Ordering::Relaxed);
        self.state
            .watchers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(token.to_owned())
            .or_default()
            .push(Subscriber { id, tx, queued: queued.clone() });
        let (ack, done) = oneshot::channel();
        if self.state.commands.send(Command::Watch(token.to_owned(), ack)).is_ok() {
            let _ = tokio::time::timeout(SUBSCRIBE_WAIT, done).await;
        }
        LiveSubscription { token: token.to_owned(), id, rx, queued, hub: self.clone() }
    }

    /// How many streams are watching.
    pub fn len(&self) -> usize {
        self.state.watchers.lock().unwrap_or_else(PoisonError::into_inner).values().map(Vec::len).sum()
    }

    /// Whether no stream is watching.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many streams were dropped for falling behind.
    pub fn dropped(&self) -> u64 {
        self.state.dropped.load(Ordering::Relaxed)
    }

    fn remove(&self, token: &str, id: u64) {
        let mut watchers = self.state.watchers.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(list) = watchers.get_mut(token) {
            list.retain(|s| s.id != id);
            if list.is_empty() {
                watchers.remove(token);
                let _ = self.state.commands.send(Command::Forget(token.to_owned()));
            }
        }
    }

    /// Hands a published event to every stream watching its token, dropping those that fell
    /// behind.
    fn fan_out(&self, channel: &str, payload: &str) {
        let Some(token) = channel.strip_prefix(&live_channel("")) else { return };
        let payload: Arc<str> = payload.into();
        let mut watchers = self.state.watchers.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(list) = watchers.get_mut(token) else { return };
        list.retain(|s| {
            let queued = s.queued.load(Ordering::Relaxed);
            s.queued.fetch_add(payload.len(), Ordering::Relaxed);
            let kept = queued + payload.len() <= LIVE_BUFFER_BYTES
                && s.tx.try_send(LiveMessage::Event(payload.clone())).is_ok();
            if !kept {
                tracing::info!(token, "Dropping an event stream that fell behind.");
                self.state.dropped.fetch_add(1, Ordering::Relaxed);
            }
            kept
        });
        if list.is_empty() {
            watchers.remove(token);
            let _ = self.state.commands.send(Command::Forget(token.to_owned()));
        }
    }

    /// Tells every stream that events may have been missed.
    fn gap(&self) {
        let mut watchers = self.state.watchers.lock().unwrap_or_else(PoisonError::into_inner);
        for list in watchers.values_mut() {
            list.retain(|s| s.tx.try_send(LiveMessage::Gap).is_ok());
        }
        watchers.retain(|_, list| !list.is_empty());
    }

    fn watched(&self) -> Vec<String> {
        self.state.watchers.lock().unwrap_or_else(PoisonError::into_inner).keys().cloned().collect()
    }

    /// Keeps the hub's subscription until `shutdown`, reconnecting to Redis as needed.
    pub async fn run(
        self,
        redis: Redis,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut backoff = Duration::from_millis(100);
        loop {
            let pubsub = tokio::select! {
                p = redis.pubsub() => p,
                _ = shutdown.changed() => return,
            };
            let (mut sink, mut stream) = match pubsub {
                Ok(p) => p.split(),
                Err(error) => {
                    tracing::warn!(%error, "Cannot subscribe to live events; retrying.");
                    // Streams waiting for their subscription go on; a gap follows.
                    while let Ok(command) = commands.try_recv() {
                        drop(command);
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.changed() => return,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            backoff = Duration::from_millis(100);
            let mut subscribed = HashSet::new();
            let mut broken = false;
            for token in self.watched() {
                if sink.subscribe(live_channel(&token)).await.is_err() {
                    broken = true;
                    break;
                }
                subscribed.insert(token);
            }
            // Whatever was published while we were not listening is missed.
            self.gap();
            while !broken {
                tokio::select! {
                    command = commands.recv() => match command {
                        Some(Command::Watch(token, ack)) => {
                            if !subscribed.contains(&token) {
                                if sink.subscribe(live_channel(&token)).await.is_err() {
                                    break;
                                }
                                subscribed.insert(token);
                            }
                            let _ = ack.send(());
                        }
                        Some(Command::Forget(token)) => {
                            let watched = self.state.watchers.lock().unwrap_or_else(PoisonError::into_inner).contains_key(&token);
                            if !watched && subscribed.remove(&token) && sink.unsubscribe(live_channel(&token)).await.is_err() {
                                break;
                            }
                        }
                        None => return,
                    },
                    message = stream.next() => match message {
                        Some(message) => {
                            if let Ok(payload) = message.get_payload::<String>() {
                                self.fan_out(message.get_channel_name(), &payload);
                            }
                        }
                        None => broken = true,
                    },
                    _ = shutdown.changed() => return,
                }
            }
            tracing::warn!("Lost the Redis subscription for live events; reconnecting.");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_live_stream_that_falls_behind_is_dropped_and_ends() {
        let (hub, commands) = LiveHub::new();
        drop(commands);
        let mut behind = hub.subscribe("t").await;
        let mut keeping_up = hub.subscribe("t").await;
        let chunk = "x".repeat(100 * 1024);
        let channel = live_channel("t");
        for _ in 0..3 {
            hub.fan_out(&channel, &chunk);
            assert_eq!(keeping_up.next().await, Some(LiveMessage::Event(chunk.as_str().into())));
        }
        assert_eq!((hub.len(), hub.dropped()), (1, 1), "the one behind by 300 KiB was dropped");
        for _ in 0..2 {
            assert!(matches!(behind.next().await, Some(LiveMessage::Event(_))));
        }
        assert_eq!(behind.next().await, None, "then its stream ends");
        hub.fan_out(&live_channel("other"), "ignored");
        drop(keeping_up);
        assert!(hub.is_empty());
    }

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
