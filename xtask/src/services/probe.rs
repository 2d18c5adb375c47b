//! Quick questions to a running service over std sockets: does it accept TCP, what status does
//! an HTTP GET get, what does Redis answer to a command, does PostgreSQL accept connections.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// How long one connect attempt of [`tcp`] may take.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(200);

/// Whether a TCP connect to `addr` succeeds now.
pub fn tcp(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT).is_ok()
}

fn connect(addr: SocketAddr, timeout: Duration) -> Result<TcpStream> {
    let stream =
        TcpStream::connect_timeout(&addr, timeout).with_context(|| format!("cannot connect to {addr}"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    Ok(stream)
}

/// The status code of an HTTP/1.1 `GET path` to `addr` (the body is not read).
pub fn http_status(addr: SocketAddr, path: &str, timeout: Duration) -> Result<u16> {
    let mut stream = connect(addr, timeout)?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
    let mut line = String::new();
    BufReader::new(stream.take(8192)).read_line(&mut line).context("no HTTP response")?;
    // "HTTP/1.1 200 OK"
    let mut words = line.split_whitespace();
    match (words.next(), words.next().and_then(|code| code.parse().ok())) {
        (Some(version), Some(code)) if version.starts_with("HTTP/") => Ok(code),
        _ => bail!("not an HTTP status line from {addr}: {:?}", line.trim_end()),
    }
}

/// A Redis reply (RESP2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`
    Simple(String),
    /// `-ERR ...`
    Error(String),
    /// `:1`
    Integer(i64),
    /// `$3\r\nabc`, or `$-1` (`None`).
    Bulk(Option<Vec<u8>>),
    /// `*2\r\n...`, or `*-1` (`None`).
    Array(Option<Vec<Reply>>),
}

/// Sends one command to the Redis at `addr` on a new connection and reads its reply, first
/// authenticating with `password` when one is given (an `AUTH` refused is an error).
pub fn redis_command(
    addr: SocketAddr,
    password: Option<&str>,
    args: &[&str],
    timeout: Duration,
) -> Result<Reply> {
    let mut stream = connect(addr, timeout)?;
    let mut request = Vec::new();
    if let Some(password) = password {
        request.extend(encode_command(&["AUTH", password]));
    }
    request.extend(encode_command(args));
    stream.write_all(&request)?;
    let mut reader = BufReader::new(stream);
    if password.is_some() {
        match read_reply(&mut reader)? {
            Reply::Simple(ok) if ok == "OK" => {}
            other => bail!("Redis at {addr} refused AUTH: {other:?}"),
        }
    }
    read_reply(&mut reader)
}

/// Whether the Redis at `addr` answers `PING` with `PONG` now (not while it loads its data),
/// authenticating with `password`.
pub fn redis_ping(addr: SocketAddr, password: Option<&str>) -> bool {
    matches!(
        redis_command(addr, password, &["PING"], Duration::from_secs(1)),
        Ok(Reply::Simple(s)) if s == "PONG"
    )
}

/// A command as a RESP array of bulk strings.
pub fn encode_command(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Reads one RESP2 reply.
pub fn read_reply(reader: &mut impl BufRead) -> Result<Reply> {
    let mut line = Vec::new();
    reader.read_until(b'\n', &mut line).context("connection closed before a reply")?;
    let Some(body) = line.strip_suffix(b"\r\n") else {
        bail!("truncated reply: {:?}", String::from_utf8_lossy(&line));
    };
    let (kind, rest) = body.split_first().context("empty reply line")?;
    let text = String::from_utf8_lossy(rest).into_owned();
    let number = || -> Result<i64> { text.parse().with_context(|| format!("bad length {text:?}")) };
    Ok(match kind {
        b'+' => Reply::Simple(text),
        b'-' => Reply::Error(text),
        b':' => Reply::Integer(number()?),
        b'$' => match usize::try_from(number()?) {
            Err(_) => Reply::Bulk(None),
            Ok(len) => {
                let mut data = vec![0; len + 2];
                reader.read_exact(&mut data)?;
                data.truncate(len);
                Reply::Bulk(Some(data))
            }
        },
        b'*' => match usize::try_from(number()?) {
            Err(_) => Reply::Array(None),
            Ok(len) => Reply::Array(Some((0..len).map(|_| read_reply(reader)).collect::<Result<_>>()?)),
        },
        other => bail!("unknown reply type {:?}", char::from(*other)),
    })
}

/// Whether the PostgreSQL on 127.0.0.1:`port` accepts connections now (`pg_isready`; false
/// while it starts up or replays its log).
pub fn postgres_ready(port: u16) -> Result<bool> {
    super::postgres::is_ready(&super::postgres::bin_dir(None)?, port)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Reply {
        read_reply(&mut &bytes[..]).unwrap()
    }

    #[test]
    fn replies_parse() {
        assert_eq!(parse(b"+PONG\r\n"), Reply::Simple("PONG".into()));
        assert_eq!(parse(b"-ERR no\r\n"), Reply::Error("ERR no".into()));
        assert_eq!(parse(b":42\r\n"), Reply::Integer(42));
        assert_eq!(parse(b"$3\r\na\r\n\r\n"), Reply::Bulk(Some(b"a\r\n".to_vec())));
        assert_eq!(parse(b"$-1\r\n"), Reply::Bulk(None));
        assert_eq!(
            parse(b"*2\r\n:1\r\n$-1\r\n"),
            Reply::Array(Some(vec![Reply::Integer(1), Reply::Bulk(None)]))
        );
        assert!(read_reply(&mut &b"+PONG"[..]).is_err());
    }

    #[test]
    fn commands_encode() {
        assert_eq!(encode_command(&["GET", "k"]), b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
    }
}
