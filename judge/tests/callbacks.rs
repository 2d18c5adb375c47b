//! Where callbacks may go: only to public addresses unless `CALLBACK_ALLOWED_HOSTS` allows
//! more, judged on the address connected to (names included), and never through a redirect.
//! The receivers listen on loopback, which is exactly what a callback must not reach unasked.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail by panicking.

mod support;

use std::io::Write;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use support::{Cluster, Options};

/// What a receiver answers.
#[derive(Clone)]
enum Answer {
    Ok,
    /// A redirect with this status to this location.
    Redirect(u16, String),
}

/// A callback receiver on 127.0.0.1 recording every connection and the token of every request.
struct Receiver {
    port: u16,
    connections: Arc<Mutex<usize>>,
    tokens: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    fn start(answer: Answer) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(Mutex::new(0));
        let tokens = Arc::new(Mutex::new(Vec::new()));
        let (seen, got) = (connections.clone(), tokens.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                // Counted before anything is answered: the worker logs only after an answer,
                // so once it has logged, every connection it made is counted.
                *seen.lock().unwrap() += 1;
                let (got, answer) = (got.clone(), answer.clone());
                std::thread::spawn(move || {
                    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                    let v = support::read_request_json(&stream);
                    got.lock().unwrap().push(v["token"].as_str().unwrap_or_default().to_owned());
                    let response = match answer {
                        Answer::Ok => {
                            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into()
                        }
                        Answer::Redirect(status, location) => format!(
                            "HTTP/1.1 {status} Moved\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        ),
                    };
                    let _ = (&stream).write_all(response.as_bytes());
                });
            }
        });
        Receiver { port, connections, tokens }
    }

    fn url(&self, host: &str) -> String {
        format!("http://{host}:{}/hook", self.port)
    }

    fn connections(&self) -> usize {
        *self.connections.lock().unwrap()
    }

    fn deliveries(&self, token: &str) -> usize {
        self.tokens.lock().unwrap().iter().filter(|t| *t == token).count()
    }
}

/// One server, one worker, with `env`; the callback module logs its deliveries too (at debug).
fn cluster(env: &[(&str, &str)]) -> Cluster {
    let mut env: Vec<(String, String)> =
        env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    env.push(("RUST_LOG".to_owned(), "info,judge::worker::callback=debug".to_owned()));
    Cluster::start(Options { servers: 1, workers: 1, concurrency: 1, env, ..Options::default() })
}

/// Submits a program whose result goes to `callback_url`; returns its token.
fn submit(cluster: &Cluster, callback_url: &str) -> String {
    let body = json!({"language_id": 71, "source_code": "print('hi')", "callback_url": callback_url});
    let r = cluster.request(0, "POST", "/submissions", Some(&body));
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["token"].as_str().unwrap().to_owned()
}

/// Waits until the worker is done with `token`'s callback; returns the line that says how.
fn callback_outcome(cluster: &Cluster, token: &str) -> String {
    let mut outcome = None;
    let done = support::wait_until(Duration::from_secs(60), || {
        outcome = cluster.worker_log(0).lines().map(str::to_owned).find(|l| {
            l.contains(token)
                && [
                    "Callback refused.",
                    "Callback delivered.",
                    "Callback answered with a redirect",
                    "Callback failed.",
                ]
                .iter()
                .any(|m| l.contains(m))
        });
        outcome.is_some()
    });
    assert!(done, "the worker never finished the callback of {token}:\n{}", cluster.logs());
    outcome.unwrap()
}

#[test]
fn without_an_allowance_loopback_is_refused_by_address_and_by_name() {
    // A proxy from the environment would connect for the worker, unchecked: it is not used.
    let proxy = Receiver::start(Answer::Ok);
    let proxy_url = proxy.url("127.0.0.1");
    let cluster = cluster(&[("http_proxy", &proxy_url), ("HTTP_PROXY", &proxy_url)]);
    let receiver = Receiver::start(Answer::Ok);
    for (host, why) in [
        ("127.0.0.1", "127.0.0.1 is not a public address"),
        ("[::ffff:127.0.0.1]", "::ffff:127.0.0.1 is not a public address"),
        ("localhost", "`localhost` resolves only to addresses that are not public"),
    ] {
        let token = submit(&cluster, &receiver.url(host));
        let outcome = callback_outcome(&cluster, &token);
        assert!(outcome.contains("WARN") && outcome.contains("Callback refused."), "{host}: {outcome}");
        assert!(outcome.contains(why), "{host}: {outcome}");
        // Refused once and for all: not retried as a connection failure would be.
        let lines = cluster.worker_log(0).lines().filter(|l| l.contains(&token)).count();
        assert_eq!(lines, 1, "{host}:\n{}", cluster.worker_log(0));
    }
    assert_eq!(receiver.connections(), 0, "a refused callback reached the receiver");
    assert_eq!(proxy.connections(), 0, "a callback went through the environment's proxy");
}

#[test]
fn an_allowed_address_is_called_once_and_redirects_are_not_followed() {
    let cluster = cluster(&[("CALLBACK_ALLOWED_HOSTS", "127.0.0.1")]);
    let receiver = Receiver::start(Answer::Ok);
    let token = submit(&cluster, &receiver.url("127.0.0.1"));
    let outcome = callback_outcome(&cluster, &token);
    assert!(outcome.contains("Callback delivered."), "{outcome}");
    assert_eq!((receiver.deliveries(&token), receiver.connections()), (1, 1));

    // A name is judged by the addresses it resolves to: localhost is 127.0.0.1, allowed.
    let token = submit(&cluster, &receiver.url("localhost"));
    assert!(callback_outcome(&cluster, &token).contains("Callback delivered."));
    assert_eq!(receiver.deliveries(&token), 1);
    // An address outside the allowance is still refused.
    let token = submit(&cluster, &format!("http://127.0.0.2:{}/hook", receiver.port));
    assert!(callback_outcome(&cluster, &token).contains("127.0.0.2 is not a public address"));

    for status in [302, 307] {
        let second = Receiver::start(Answer::Ok);
        let first = Receiver::start(Answer::Redirect(status, second.url("127.0.0.1")));
        let token = submit(&cluster, &first.url("127.0.0.1"));
        let outcome = callback_outcome(&cluster, &token);
        assert_eq!(second.connections(), 0, "the {status} redirect was followed");
        assert_eq!(first.deliveries(&token), 1, "{status}");
        assert!(outcome.contains("Callback answered with a redirect"), "{status}: {outcome}");
        assert!(outcome.contains(&format!("status={status}")), "{status}: {outcome}");
    }
}

#[test]
fn an_allowed_name_reaches_its_addresses_but_not_the_same_address_by_number() {
    let cluster = cluster(&[("CALLBACK_ALLOWED_HOSTS", "localhost")]);
    let receiver = Receiver::start(Answer::Ok);
    let token = submit(&cluster, &receiver.url("localhost"));
    assert!(callback_outcome(&cluster, &token).contains("Callback delivered."));
    assert_eq!(receiver.deliveries(&token), 1);
    let token = submit(&cluster, &receiver.url("127.0.0.1"));
    assert!(callback_outcome(&cluster, &token).contains("127.0.0.1 is not a public address"));
    assert_eq!(receiver.connections(), 1);
}
