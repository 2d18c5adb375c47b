//! A PostgreSQL server for tests and the dev cluster.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use super::{Launch, Server, absolute, ensure_port_free, loopback, on_port};
use crate::process::{self, Signal};

/// Where Debian installs each PostgreSQL version: `/usr/lib/postgresql/<version>/bin`.
const INSTALL_ROOT: &str = "/usr/lib/postgresql";

/// The database superuser, and the system user the server runs as when we are root.
const USER: &str = "postgres";

/// A PostgreSQL server on 127.0.0.1 with its cluster in `<dir>/data`, its unix socket in `<dir>`
/// and, by default, its log in `<dir>/postgres.log`. Password authentication (SCRAM) for every
/// connection, superuser `postgres` with the directory's password, fsync on. Dropping it stops
/// the server (fast shutdown) and waits for it.
#[derive(Debug)]
pub struct Postgres {
    /// The `bin` directory of the PostgreSQL version that owns the cluster.
    bin: PathBuf,
    dir: PathBuf,
    data: PathBuf,
    port: u16,
    database: String,
    password: String,
    /// The system user the server runs as, when we are root (PostgreSQL refuses root).
    owner: Option<Owner>,
    log: PathBuf,
    new_session: bool,
    /// The running postmaster; `None` once stopped or detached.
    server: Option<Server>,
    pid: u32,
}

#[derive(Debug, Clone, Copy)]
struct Owner {
    uid: u32,
    gid: u32,
}

impl Postgres {
    /// Starts PostgreSQL 15 on 127.0.0.1:`port` (0 = free one) with its data in `dir`: runs
    /// initdb when `dir` holds no cluster (user `postgres`, whose password is kept in `dir`,
    /// made at the first start), then the server with unix sockets in `dir` too, then creates
    /// database `database` if missing. Every connection, TCP or unix socket, must give the
    /// password (`scram-sha-256` in `pg_hba.conf`, which every start writes); a cluster made
    /// before passwords were required gets one. PostgreSQL refuses to run as root: when running as root, run
    /// initdb and the server as the `postgres` system user (created by Debian's package;
    /// create it with `useradd --system` if missing) and chown `dir` to it. Waits until it
    /// accepts connections.
    ///
    /// The newest installed version is used for a new cluster, the cluster's own version for
    /// an existing one. As root, the `postgres` user must be able to reach `dir` (every parent
    /// searchable by it); a clear error says which parent is not.
    pub fn start(dir: &Path, port: u16, database: &str) -> Result<Postgres> {
        Postgres::start_with(dir, port, database, &Launch::default())
    }

    /// [`Postgres::start`], with the output and session `launch` asks for.
    pub fn start_with(dir: &Path, port: u16, database: &str, launch: &Launch) -> Result<Postgres> {
        if database.is_empty() || database.len() > 63 || database.contains('\0') {
            bail!("bad database name {database:?} (1 to 63 bytes, no NUL)");
        }
        let dir = absolute(dir)?;
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let owner = if process::is_root() {
            let owner = system_user()?;
            std::os::unix::fs::chown(&dir, Some(owner.uid), Some(owner.gid))
                .with_context(|| format!("cannot chown {} to {USER}", dir.display()))?;
            check_reachable(&dir, owner)?;
            Some(owner)
        } else {
            None
        };
        let data = dir.join("data");
        let version = fs::read_to_string(data.join("PG_VERSION")).ok().map(|v| v.trim().to_owned());
        let bin = bin_dir(version.as_deref())?;
        let log = launch.log.clone().unwrap_or_else(|| dir.join("postgres.log"));
        let (password, new_password) = super::password(&dir)?;
        if let Some(owner) = owner {
            // initdb, which runs as the owner, reads it.
            std::os::unix::fs::chown(super::password_file(&dir), Some(owner.uid), Some(owner.gid))
                .with_context(|| format!("cannot chown {}", super::password_file(&dir).display()))?;
        }
        let mut postgres = Postgres {
            bin,
            dir,
            data,
            port,
            database: database.to_owned(),
            password,
            owner,
            log,
            new_session: launch.new_session,
            server: None,
            pid: 0,
        };
        if version.is_none() {
            if port != 0 {
                // A busy port fails before a second of initdb rather than after.
                ensure_port_free("PostgreSQL", loopback(port))?;
            }
            postgres.initdb()?;
        } else if new_password {
            postgres.set_password()?;
        }
        postgres.write_hba()?;
        on_port(port, |port| {
            postgres.port = port;
            postgres.run()
        })?;
        Ok(postgres)
    }

    /// A command for one of PostgreSQL's programs, run as the cluster's owner.
    fn command(&self, program: &str, new_session: bool) -> Command {
        let mut cmd = process::command(&self.bin.join(program), new_session);
        cmd.current_dir(&self.dir);
        if let Some(owner) = self.owner {
            cmd.uid(owner.uid).gid(owner.gid);
        }
        cmd
    }

    /// Creates the cluster in `<dir>/data`.
    fn initdb(&self) -> Result<()> {
        if self.data.exists() {
            // What an interrupted initdb left: no PG_VERSION, so no cluster to keep.
            fs::remove_dir_all(&self.data)
                .with_context(|| format!("cannot remove the unfinished cluster {}", self.data.display()))?;
        }
        let mut cmd = self.command("initdb", false);
        cmd.arg("-D")
            .arg(&self.data)
            .args(["-U", USER, "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C"])
            .arg(format!("--pwfile={}", super::password_file(&self.dir).display()));
        let (mut child, log_start) = process::spawn_logged(&mut cmd, &self.log)?;
        let status = child.wait()?;
        if !status.success() {
            bail!(
                "initdb of {} failed ({status}); see {}:\n{}",
                self.data.display(),
                self.log.display(),
                process::tail(&self.log, log_start, 20)
            );
        }
        Ok(())
    }

    /// Gives the superuser of an existing cluster the directory's password, in single-user
    /// mode (no connection, so no authentication, and no server running).
    fn set_password(&self) -> Result<()> {
        let out = process::open_log(&self.log)?;
        let log_start = out.metadata().map(|m| m.len()).unwrap_or(0);
        let mut child = self
            .command("postgres", false)
            .args(["--single", "-D"])
            .arg(&self.data)
            .arg("postgres")
            .stdin(Stdio::piped())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("cannot start postgres --single")?;
        let sql = format!("ALTER USER {USER} PASSWORD '{}';\n", self.password);
        let written = child.stdin.take().map(|mut stdin| stdin.write_all(sql.as_bytes()));
        let status = child.wait()?;
        if !status.success() || matches!(written, Some(Err(_))) {
            bail!(
                "cannot set the password of {} ({status}); see {}:\n{}",
                self.data.display(),
                self.log.display(),
                process::tail(&self.log, log_start, 20)
            );
        }
        Ok(())
    }

    /// Writes `pg_hba.conf`: the password, checked with SCRAM, for every connection.
    fn write_hba(&self) -> Result<()> {
        let file = self.data.join("pg_hba.conf");
        let text = "# Written by xtask::services at every start.\n\
                    local all all scram-sha-256\n\
                    host all all 127.0.0.1/32 scram-sha-256\n\
                    host all all ::1/128 scram-sha-256\n";
        fs::write(&file, text).with_context(|| format!("cannot write {}", file.display()))
    }

    /// Starts the postmaster, waits until it accepts connections, creates the database.
    fn run(&mut self) -> Result<()> {
        let addr = loopback(self.port);
        ensure_port_free("PostgreSQL", addr)?;
        // A unix socket path holds at most 107 bytes; without one, clients use TCP.
        let socket_dir =
            (self.dir.as_os_str().len() + "/.s.PGSQL.65535.lock".len() < 108).then_some(&self.dir);
        remove_stale_lock_files(&self.data, socket_dir.map(PathBuf::as_path), self.port)?;
        let sockets = socket_dir.map(|dir| format!("\"{}\"", dir.display())).unwrap_or_default();
        let mut cmd = self.command("postgres", self.new_session);
        cmd.arg("-D")
            .arg(&self.data)
            .args(["-p", &self.port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(format!("unix_socket_directories={sockets}"))
            .args(["-c", "max_connections=200", "-c", "shared_buffers=64MB", "-c", "fsync=on"]);
        let mut server = Server::spawn("postgres", &mut cmd, &self.log)?;
        self.pid = server.pid();
        let (data, pid) = (self.data.clone(), self.pid);
        let ready = server
            .wait_ready(|| says_ready(&data, pid))
            .and_then(|()| self.create_database().map_err(|e| server.failure(&format!("{e:#}"))));
        match ready {
            Ok(()) => {
                self.server = Some(server);
                Ok(())
            }
            Err(error) => {
                let _ = server.kill();
                Err(error.context(format!("cannot start PostgreSQL on {addr} in {}", self.dir.display())))
            }
        }
    }

    /// Runs one SQL statement as the superuser in database `postgres`; returns its output
    /// (unaligned, tuples only).
    fn psql(&self, sql: &str) -> Result<String> {
        let out = Command::new(self.bin.join("psql"))
            .args(["-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-U", USER])
            .args(["-d", "postgres", "-p", &self.port.to_string(), "-c", sql])
            .env("PGCONNECT_TIMEOUT", "10")
            .env("PGPASSWORD", &self.password)
            .stdin(Stdio::null())
            .output()
            .context("cannot run psql")?;
        if !out.status.success() {
            bail!("psql -c {sql:?} failed: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    fn create_database(&self) -> Result<()> {
        let name = &self.database;
        let literal = name.replace('\'', "''");
        if self.psql(&format!("SELECT 1 FROM pg_database WHERE datname = '{literal}'"))? != "1" {
            let ident = name.replace('"', "\"\"");
            self.psql(&format!("CREATE DATABASE \"{ident}\""))?;
        }
        Ok(())
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `postgres://postgres:PASSWORD@127.0.0.1:PORT/DATABASE`.
    pub fn url(&self) -> String {
        format!("postgres://{USER}:{}@127.0.0.1:{}/{}", self.password, self.port, self.database)
    }

    /// The superuser's password.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The pid of the postmaster (the last one started, after a restart).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The file its output goes to.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// Stops the server (fast shutdown: `SIGINT`, which rolls back open sessions and writes a
    /// checkpoint) and waits for it.
    pub fn stop(&mut self) -> Result<()> {
        if let Some(server) = self.server.take() {
            server.stop(Signal::Int)?;
        }
        Ok(())
    }

    /// Stops the server and starts it again on the same port and data; waits until it accepts
    /// connections.
    pub fn restart(&mut self) -> Result<()> {
        self.stop()?;
        self.run()
    }

    /// Leaves the server running when this handle goes, and returns its pid.
    pub fn detach(mut self) -> u32 {
        self.server = None;
        self.pid
    }
}

impl Drop for Postgres {
    /// Stops the server (fast shutdown) and waits for it.
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// The `bin` directory of PostgreSQL `version`, or of the newest version installed.
pub(super) fn bin_dir(version: Option<&str>) -> Result<PathBuf> {
    let has_server = |bin: &Path| bin.join("postgres").is_file();
    if let Some(version) = version {
        let bin = Path::new(INSTALL_ROOT).join(version).join("bin");
        if !has_server(&bin) {
            bail!(
                "the cluster is PostgreSQL {version}, which is not installed (no {}): install the \
                 Debian package postgresql-{version}",
                bin.join("postgres").display()
            );
        }
        return Ok(bin);
    }
    let newest = fs::read_dir(INSTALL_ROOT)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            has_server(&bin).then_some((version, bin))
        })
        .max_by_key(|(version, _)| *version);
    match newest {
        Some((_, bin)) => Ok(bin),
        None => bail!(
            "the PostgreSQL server is not installed (no {INSTALL_ROOT}/*/bin/postgres): install the \
             Debian package postgresql, or run `cargo xtask setup` as root"
        ),
    }
}

/// Whether the postmaster `pid` says in its `postmaster.pid` that it accepts connections (as
/// `pg_ctl --wait` reads it: line 8 is its state). Unlike a connection attempt, this neither
/// costs a process nor fills the log with "the database system is starting up".
fn says_ready(data: &Path, pid: u32) -> bool {
    let Ok(text) = fs::read_to_string(data.join("postmaster.pid")) else {
        return false;
    };
    let lines: Vec<&str> = text.lines().collect();
    lines.first().and_then(|line| line.trim().parse().ok()) == Some(pid)
        && lines.get(7).is_some_and(|state| state.trim() == "ready")
}

/// Whether the PostgreSQL on 127.0.0.1:`port` accepts connections, by `bin`'s `pg_isready`.
pub(super) fn is_ready(bin: &Path, port: u16) -> Result<bool> {
    let status = Command::new(bin.join("pg_isready"))
        .args(["-q", "-h", "127.0.0.1", "-U", USER, "-d", "postgres", "-t", "2", "-p"])
        .arg(port.to_string())
        .stdin(Stdio::null())
        .status()
        .context("cannot run pg_isready")?;
    Ok(status.success())
}

/// The `postgres` system user, created if missing.
fn system_user() -> Result<Owner> {
    if let Some(owner) = lookup_user()? {
        return Ok(owner);
    }
    let group_exists =
        Command::new("getent").args(["group", USER]).output().is_ok_and(|o| o.status.success());
    let mut useradd = Command::new("useradd");
    useradd.args(["--system", "--home-dir", "/var/lib/postgresql", "--no-create-home"]);
    useradd.args(["--shell", "/bin/bash"]);
    if group_exists {
        useradd.args(["--gid", USER]);
    } else {
        useradd.arg("--user-group");
    }
    let status = useradd.arg(USER).status().context("cannot run useradd")?;
    if !status.success() {
        bail!("useradd {USER} failed ({status})");
    }
    lookup_user()?.with_context(|| format!("no user {USER} after useradd"))
}

fn lookup_user() -> Result<Option<Owner>> {
    let out = Command::new("getent").args(["passwd", USER]).output().context("cannot run getent")?;
    if !out.status.success() {
        return Ok(None);
    }
    // postgres:x:101:104:PostgreSQL administrator,,,:/var/lib/postgresql:/bin/bash
    let line = String::from_utf8_lossy(&out.stdout);
    let fields: Vec<&str> = line.trim().split(':').collect();
    match (fields.get(2).and_then(|u| u.parse().ok()), fields.get(3).and_then(|g| g.parse().ok())) {
        (Some(uid), Some(gid)) => Ok(Some(Owner { uid, gid })),
        _ => bail!("cannot parse getent passwd {USER}: {line:?}"),
    }
}

/// Fails with a clear message when `owner` cannot reach `dir` through its parents.
fn check_reachable(dir: &Path, owner: Owner) -> Result<()> {
    for parent in dir.ancestors().skip(1) {
        let meta = fs::metadata(parent).with_context(|| format!("cannot stat {}", parent.display()))?;
        let mode = meta.mode();
        let search = if meta.uid() == owner.uid {
            mode & 0o100
        } else if meta.gid() == owner.gid {
            mode & 0o010
        } else {
            mode & 0o001
        };
        if search == 0 {
            bail!(
                "PostgreSQL runs as user {USER}, which cannot reach {}: {} is mode {:o}; make it \
                 searchable (chmod o+x) or keep the data elsewhere",
                dir.display(),
                parent.display(),
                mode & 0o7777
            );
        }
    }
    Ok(())
}

/// Removes `postmaster.pid` and the socket's lock file when the server they name is gone (a
/// crash, a killed container: after a reboot its pid may belong to another process). The server
/// would judge them itself, but by `kill(pid, 0)`, which a zombie passes: where nobody reaps
/// (a container's pid 1 often does not), a killed postmaster would block its successor.
fn remove_stale_lock_files(data: &Path, socket_dir: Option<&Path>, port: u16) -> Result<()> {
    remove_stale_lock(&data.join("postmaster.pid"), data)?;
    match socket_dir {
        Some(dir) => remove_stale_lock(&dir.join(format!(".s.PGSQL.{port}.lock")), data),
        None => Ok(()),
    }
}

/// Removes a PostgreSQL lock file (first line: the owner's pid) unless a live postmaster working
/// in `data` holds it.
fn remove_stale_lock(file: &Path, data: &Path) -> Result<()> {
    let Ok(text) = fs::read_to_string(file) else {
        return Ok(());
    };
    if let Some(pid) = text.lines().next().and_then(|line| line.trim().parse::<u32>().ok()) {
        let is_postgres = process::command_name(pid).as_deref() == Some("postgres");
        // The postmaster works in its data directory; unreadable (another user) counts as ours.
        let cwd = fs::read_link(format!("/proc/{pid}/cwd")).ok();
        let here = cwd.is_none_or(|cwd| fs::canonicalize(data).is_ok_and(|data| data == cwd));
        if is_postgres && here {
            bail!("a PostgreSQL server (pid {pid}) already runs on {}: stop it first", data.display());
        }
        if is_postgres {
            bail!("another PostgreSQL server (pid {pid}) holds {}", file.display());
        }
    }
    fs::remove_file(file).with_context(|| format!("cannot remove the stale {}", file.display()))
}
