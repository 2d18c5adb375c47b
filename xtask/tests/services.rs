//! The local services start, answer over the wire only to those who give their password, keep
//! their data across a restart and stop.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail by panicking.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use xtask::process;
use xtask::services::{Postgres, Redis, free_port, password_file, read_password, wait_for_tcp};

/// One command over a fresh connection, as raw RESP, after `AUTH password` when a password is
/// given; returns the reply's first line and, for a bulk string, its payload.
fn resp_as(password: Option<&str>, port: u16, args: &[&str]) -> (String, Option<String>) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let encode = |args: &[&str]| {
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request += &format!("${}\r\n{arg}\r\n", arg.len());
        }
        request
    };
    let mut request = password.map(|p| encode(&["AUTH", p])).unwrap_or_default();
    request += &encode(args);
    stream.write_all(request.as_bytes()).unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    if password.is_some() {
        reader.read_line(&mut line).unwrap();
        assert_eq!(line, "+OK\r\n", "AUTH");
        line.clear();
    }
    reader.read_line(&mut line).unwrap();
    let line = line.trim_end().to_owned();
    let payload = match line.strip_prefix('$').map(|n| n.parse::<i64>().unwrap()) {
        Some(len) if len >= 0 => {
            let mut data = vec![0; usize::try_from(len).unwrap() + 2];
            reader.read_exact(&mut data).unwrap();
            data.truncate(data.len() - 2);
            Some(String::from_utf8(data).unwrap())
        }
        _ => None,
    };
    (line, payload)
}

/// [`resp_as`] with the server's own password.
fn resp(redis: &Redis, args: &[&str]) -> (String, Option<String>) {
    resp_as(Some(redis.password()), redis.port(), args)
}

/// Whether `file` is readable and writable by its owner only.
fn private(file: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(file).unwrap().permissions().mode() & 0o777 == 0o600
}

#[test]
fn redis_keeps_a_key_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut redis = Redis::start(&dir.path().join("redis"), 0).unwrap();
    let port = redis.port();
    assert_eq!(redis.url(), format!("redis://:{}@127.0.0.1:{port}", redis.password()));
    assert!(process::alive(redis.pid()));

    assert_eq!(resp(&redis, &["SET", "verdict:key", "forty two"]).0, "+OK");
    assert_eq!(resp(&redis, &["GET", "verdict:key"]), ("$9".into(), Some("forty two".into())));

    let before = redis.pid();
    redis.restart().unwrap();
    assert_eq!(redis.port(), port);
    assert_ne!(redis.pid(), before);
    assert!(!process::alive(before));
    assert_eq!(resp(&redis, &["GET", "verdict:key"]).1.as_deref(), Some("forty two"), "the AOF kept it");
    assert!(dir.path().join("redis/appendonlydir").is_dir());
    assert!(!dir.path().join("redis/dump.rdb").exists(), "no RDB snapshots");

    let pid = redis.pid();
    redis.stop().unwrap();
    assert!(!process::alive(pid));
    redis.stop().unwrap();
}

#[test]
fn dropping_redis_kills_it() {
    let dir = tempfile::tempdir().unwrap();
    let redis = Redis::start(dir.path(), 0).unwrap();
    let (pid, port) = (redis.pid(), redis.port());
    assert_eq!(resp(&redis, &["PING"]).0, "+PONG");
    drop(redis);
    assert!(!process::alive(pid));
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn a_busy_port_is_refused_rather_than_answered_by_another_server() {
    let dir = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let error = format!("{:#}", Redis::start(dir.path(), port).unwrap_err());
    assert!(error.contains("already listens"), "{error}");
    let error = format!("{:#}", Postgres::start(dir.path(), port, "x").unwrap_err());
    assert!(error.contains("already listens"), "{error}");
}

#[test]
fn a_failing_redis_names_its_log() {
    let dir = tempfile::tempdir().unwrap();
    // A file where Redis wants its directory: it cannot start there.
    std::fs::write(dir.path().join("appendonlydir"), "").unwrap();
    let error = format!("{:#}", Redis::start(dir.path(), 0).unwrap_err());
    assert!(error.contains("redis.log") && error.contains("exited"), "{error}");
}

#[test]
fn redis_refuses_whoever_lacks_its_password_and_keeps_it_across_starts() {
    let dir = tempfile::tempdir().unwrap();
    let mut redis = Redis::start(dir.path(), 0).unwrap();
    let port = redis.port();
    let password = redis.password().to_owned();
    assert_eq!(password.len(), 32);
    assert_eq!(read_password(dir.path()).unwrap(), password);
    assert!(private(&password_file(dir.path())) && private(&dir.path().join("auth.conf")));

    let (reply, _) = resp_as(None, port, &["GET", "anything"]);
    assert!(reply.starts_with("-NOAUTH"), "{reply}");
    let refused = xtask::services::probe::redis_command(
        std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Some("not-the-password"),
        &["PING"],
        Duration::from_secs(2),
    );
    assert!(refused.is_err(), "{refused:?}");
    assert!(!xtask::services::probe::redis_ping(([127, 0, 0, 1], port).into(), None));
    assert_eq!(redis.command(&["PING"]).unwrap(), xtask::services::probe::Reply::Simple("PONG".into()));

    // A new start on the same directory (as after a crash) requires the same password.
    redis.kill().unwrap();
    let again = Redis::start(dir.path(), port).unwrap();
    assert_eq!(again.password(), password);
    assert_eq!(resp(&again, &["PING"]).0, "+PONG");
    assert!(resp_as(None, port, &["PING"]).0.starts_with("-NOAUTH"));
    // Another directory, another password.
    let other = tempfile::tempdir().unwrap();
    assert_ne!(Redis::start(other.path(), 0).unwrap().password(), password);
}

/// psql with `url` and no other way to a password; its output, or its error.
fn try_psql(url: &str, sql: &str) -> Result<String, String> {
    let out = Command::new("psql")
        .args(["-X", "-tA", "-w", url, "-c", sql])
        .env_remove("PGPASSWORD")
        .env("PGPASSFILE", "/dev/null")
        .output()
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).unwrap().trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn psql(url: &str, sql: &str) -> String {
    try_psql(url, sql).unwrap_or_else(|e| panic!("psql: {e}"))
}

#[test]
fn postgres_refuses_whoever_lacks_its_password() {
    let dir = tempfile::tempdir().unwrap();
    let mut postgres = Postgres::start(dir.path(), 0, "app").unwrap();
    let (port, password) = (postgres.port(), postgres.password().to_owned());
    assert_eq!(read_password(dir.path()).unwrap(), password);
    assert!(private(&password_file(dir.path())));
    assert_eq!(psql(&postgres.url(), "SELECT current_user"), "postgres");
    for url in [
        format!("postgres://postgres@127.0.0.1:{port}/app"),
        format!("postgres://postgres:wrong@127.0.0.1:{port}/app"),
    ] {
        let error = try_psql(&url, "SELECT 1").unwrap_err();
        assert!(
            error.contains("password authentication failed") || error.contains("no password supplied"),
            "{url}: {error}"
        );
    }
    // The unix socket asks for it too.
    let socket = format!("postgresql://postgres@/app?host={}&port={port}", dir.path().display());
    assert!(try_psql(&socket, "SELECT 1").unwrap_err().contains("password"), "over the socket");

    // A cluster whose password file is gone (or one made before passwords) gets a new one.
    postgres.stop().unwrap();
    std::fs::remove_file(password_file(dir.path())).unwrap();
    let again = Postgres::start(dir.path(), port, "app").unwrap();
    assert_ne!(again.password(), password);
    assert_eq!(psql(&again.url(), "SELECT current_database()"), "app");
    assert!(try_psql(&postgres.url(), "SELECT 1").is_err(), "the old password is void");
}

#[test]
fn postgres_answers_keeps_data_and_stops() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("postgres");
    let mut postgres = Postgres::start(&dir, 0, "verdict_test").unwrap();
    let port = postgres.port();
    assert_eq!(
        postgres.url(),
        format!("postgres://postgres:{}@127.0.0.1:{port}/verdict_test", postgres.password())
    );
    assert_eq!(psql(&postgres.url(), "SELECT 1"), "1");
    psql(&postgres.url(), "CREATE TABLE t (v text); INSERT INTO t VALUES ('kept')");

    let pid = postgres.pid();
    postgres.stop().unwrap();
    assert!(!process::alive(pid));
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());

    // Again on the same directory: no initdb, the database and its rows are there.
    let again = Postgres::start(&dir, port, "verdict_test").unwrap();
    assert!(dir.join("postgres.log").is_file());
    assert_eq!(psql(&again.url(), "SELECT v FROM t"), "kept");
    let pid = again.pid();
    drop(again);
    assert!(!process::alive(pid));
}

#[test]
fn postgres_starts_over_a_stale_pid_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut postgres = Postgres::start(dir.path(), 0, "app").unwrap();
    postgres.stop().unwrap();
    // What a killed container leaves: a pid file naming a process that is gone.
    let file = dir.path().join("data/postmaster.pid");
    std::fs::write(&file, format!("{}\n{}\n", u32::MAX >> 10, dir.path().join("data").display())).unwrap();
    postgres.restart().unwrap();
    assert_eq!(psql(&postgres.url(), "SELECT current_database()"), "app");
}

#[test]
fn postgres_explains_a_directory_its_user_cannot_reach() {
    if !process::is_root() {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let error = format!("{:#}", Postgres::start(&dir.path().join("pg"), 0, "x").unwrap_err());
    assert!(error.contains("cannot reach") && error.contains("chmod o+x"), "{error}");
}

#[test]
fn a_free_port_is_free_and_tcp_waits_time_out() {
    let port = free_port().unwrap();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    assert!(wait_for_tcp(addr, Duration::from_millis(100)).is_err());
    let _listener = std::net::TcpListener::bind(addr).unwrap();
    wait_for_tcp(addr, Duration::from_secs(1)).unwrap();
}
