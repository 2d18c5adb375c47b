//! A Redis server for tests and the dev cluster.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};

use super::{
    Launch, Server, absolute, ensure_port_free, find_program, loopback, on_port, probe, write_private,
};
use crate::process::Signal;

/// How long a command sent through [`Redis::command`] may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

/// A `redis-server` on 127.0.0.1 with its files (append-only log) in a directory of its own,
/// requiring the directory's password (`requirepass`). Dropping it kills the server; data
/// written a second before survives (AOF, fsync every second), and everything survives
/// [`Redis::stop`] and [`Redis::restart`].
#[derive(Debug)]
pub struct Redis {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    password: String,
    log: PathBuf,
    new_session: bool,
    /// The running server; `None` once stopped, killed or detached.
    server: Option<Server>,
    /// The pid of the last server started.
    pid: u32,
}

impl Redis {
    /// Starts redis-server on 127.0.0.1:`port` (0 = pick a free one) with its files in `dir`
    /// (created if missing) and the password kept there (made at the first start).
    /// Persistence: appendonly yes, appendfsync everysec (so a restart keeps data), no RDB
    /// snapshots. Waits until it answers PING.
    pub fn start(dir: &Path, port: u16) -> Result<Redis> {
        Redis::start_with(dir, port, &Launch::default())
    }

    /// [`Redis::start`], with the output and session `launch` asks for.
    pub fn start_with(dir: &Path, port: u16, launch: &Launch) -> Result<Redis> {
        let bin = find_program("redis-server", &["/usr/bin/redis-server"], "redis-server")?;
        let dir = absolute(dir)?;
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let log = launch.log.clone().unwrap_or_else(|| dir.join("redis.log"));
        let (password, _) = super::password(&dir)?;
        // In a file rather than on the command line, where every local user could read it.
        write_private(&dir.join("auth.conf"), &format!("requirepass {password}\n"))?;
        let mut redis =
            Redis { bin, dir, port, password, log, new_session: launch.new_session, server: None, pid: 0 };
        on_port(port, |port| {
            redis.port = port;
            redis.run()
        })?;
        Ok(redis)
    }

    /// Spawns the server and waits until it answers PING.
    fn run(&mut self) -> Result<()> {
        let addr = loopback(self.port);
        ensure_port_free("Redis", addr)?;
        let mut cmd = crate::process::command(&self.bin, self.new_session);
        // Everything but the password on the command line, so no config file can differ
        // between machines.
        cmd.arg(self.dir.join("auth.conf"))
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--appendonly", "yes", "--appendfsync", "everysec", "--save", ""])
            .args(["--daemonize", "no", "--logfile", ""])
            .current_dir(&self.dir);
        let mut server = Server::spawn("redis-server", &mut cmd, &self.log)?;
        self.pid = server.pid();
        let password = self.password.clone();
        match server.wait_ready(|| probe::redis_ping(addr, Some(&password))) {
            Ok(()) => {
                self.server = Some(server);
                Ok(())
            }
            Err(error) => {
                let _ = server.kill();
                Err(error.context(format!(
                    "cannot start Redis on port {} in {}",
                    self.port,
                    self.dir.display()
                )))
            }
        }
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://:PASSWORD@127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://:{}@127.0.0.1:{}", self.password, self.port)
    }

    /// The password it requires.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// Sends one command, authenticated, on a new connection and returns the reply.
    pub fn command(&self, args: &[&str]) -> Result<probe::Reply> {
        probe::redis_command(loopback(self.port), Some(&self.password), args, COMMAND_TIMEOUT)
    }

    /// The pid of the server (the last one started, after a restart).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The file its output goes to.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// Stops the server with `SIGTERM` (it fsyncs its AOF and exits) and waits for it.
    pub fn stop(&mut self) -> Result<()> {
        if let Some(server) = self.server.take() {
            server.stop(Signal::Term)?;
        }
        Ok(())
    }

    /// Kills the server with `SIGKILL` and waits for it: writes of the last second may be lost.
    pub fn kill(&mut self) -> Result<()> {
        if let Some(server) = self.server.take() {
            server.kill()?;
        }
        Ok(())
    }

    /// Stops (SIGTERM) and starts again on the same port and dir; waits for PING.
    pub fn restart(&mut self) -> Result<()> {
        self.stop()?;
        self.run()
    }

    /// Leaves the server running when this handle goes, and returns its pid.
    pub fn detach(mut self) -> u32 {
        // Dropping a `Child` neither kills nor waits.
        self.server = None;
        self.pid
    }
}

impl Drop for Redis {
    /// Kills the server.
    fn drop(&mut self) {
        let _ = self.kill();
    }
}
