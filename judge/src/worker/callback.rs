//! Callbacks: `PUT callback_url` with the finished submission (default fields, base64), as
//! Judge0 sends them. Tried again only when the connection itself failed.
//!
//! A callback URL comes from whoever submitted, so a callback is a request the worker makes on
//! a stranger's behalf. The rules (see `ARCHITECTURE.md`): only `http` and `https`, no redirect
//! is followed, no proxy is used, and the address connected to must be public
//! ([`judge_sandbox::addresses::is_public`]) unless `CALLBACK_ALLOWED_HOSTS` allows it. The check
//! is made on the addresses reqwest actually connects to: names are resolved by
//! [`CheckedResolver`], which hands reqwest only the addresses it allowed, so there is no
//! second lookup an attacker's DNS server could answer differently.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use judge_sandbox::addresses::{is_public, parse_cidrs};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::{Url, redirect};

use crate::db::Submission;
use crate::languages::Languages;
use crate::server::view;

/// The variable [`Allowance`] is read from, named in its errors and refusals.
const VARIABLE: &str = "CALLBACK_ALLOWED_HOSTS";

/// The non-public destinations an operator lets callbacks reach (`CALLBACK_ALLOWED_HOSTS`):
/// host names, matched exactly (case and a final dot aside) against the URL's host, and IP
/// addresses or CIDR ranges, matched against the address connected to.
///
/// A URL whose host is an allowed name may connect to whatever that name resolves to; any other
/// URL may connect only to public addresses and to allowed ranges. So `localhost` is reached
/// when `localhost` or its address (`127.0.0.1`) is allowed, and refused otherwise.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allowance {
    names: Vec<String>,
    nets: Vec<IpNet>,
}

impl Allowance {
    /// Parses a list of host names, IP addresses and CIDR ranges separated by spaces or commas
    /// (`127.0.0.1 10.0.0.0/8 hooks.internal`). The error names the variable and the entry.
    pub fn parse(list: &str) -> Result<Allowance, String> {
        let mut allowance = Allowance::default();
        for entry in list.split(|c: char| c.is_whitespace() || c == ',').filter(|e| !e.is_empty()) {
            if let Ok(nets) = parse_cidrs(entry) {
                allowance.nets.extend(nets);
            } else if let Some(name) = host_name(entry) {
                allowance.names.push(name);
            } else {
                return Err(format!(
                    "{VARIABLE}: `{entry}` is neither a host name nor an IP address or CIDR range"
                ));
            }
        }
        Ok(allowance)
    }

    /// Whether a callback may connect to `ip`, reached through the URL host `name` (`None` when
    /// the URL's host is the address itself).
    pub fn permits(&self, name: Option<&str>, ip: IpAddr) -> bool {
        if name.and_then(host_name).is_some_and(|n| self.names.contains(&n)) {
            return true;
        }
        // `::ffff:127.0.0.1` is judged as 127.0.0.1, here as in `is_public`.
        let canonical = ip.to_canonical();
        is_public(ip) || self.nets.iter().any(|net| net.contains(&ip) || net.contains(&canonical))
    }
}

/// `entry` as a host name to compare (lower case, without a final dot), if it is one: labels
/// of letters, digits, `-` and `_`, the last not all digits (a URL parser reads that as an IPv4
/// address, so such an entry is a mistyped address rather than a name).
fn host_name(entry: &str) -> Option<String> {
    let name = entry.strip_suffix('.').unwrap_or(entry).to_ascii_lowercase();
    let labels: Vec<&str> = name.split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let last_numeric = labels.last().is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()));
    (name.len() <= 253 && labels.iter().all(label_ok) && !last_numeric).then_some(name)
}

/// Why a callback was not sent. Never retried.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refused {
    /// Not a URL reqwest can parse.
    #[error("not a valid URL: {0}")]
    Url(UrlError),
    /// A scheme other than http and https.
    #[error("the scheme `{0}` is neither http nor https")]
    Scheme(String),
    /// An IP-literal URL to a non-public address.
    #[error("{0} is not a public address and {VARIABLE} does not allow it")]
    Address(IpAddr),
    /// A name that resolved only to non-public addresses.
    #[error(
        "`{name}` resolves only to addresses that are not public and {VARIABLE} does not allow: {addresses}"
    )]
    Name {
        /// The URL's host.
        name: String,
        /// What it resolved to.
        addresses: AddressList,
    },
}

/// The URL parser's error (reqwest re-exports the parser but not its error's name).
type UrlError = <Url as std::str::FromStr>::Err;

/// Addresses, shown separated by commas.
#[derive(Debug)]
pub(crate) struct AddressList(Vec<IpAddr>);

impl fmt::Display for AddressList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: Vec<String> = self.0.iter().map(IpAddr::to_string).collect();
        f.write_str(&shown.join(", "))
    }
}

/// reqwest's resolver for callbacks: resolves a name once and gives reqwest only the addresses
/// [`Allowance::permits`], so what was checked is what is connected to. IP-literal URLs never
/// reach a resolver (hyper connects to them directly); [`check`] covers those.
#[derive(Debug, Clone)]
pub struct CheckedResolver {
    allowance: Arc<Allowance>,
}

impl CheckedResolver {
    /// A resolver applying `allowance`.
    pub fn new(allowance: Arc<Allowance>) -> CheckedResolver {
        CheckedResolver { allowance }
    }
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allowance = self.allowance.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            // Port 0: reqwest puts the URL's (or the scheme's) port in.
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let (kept, refused): (Vec<SocketAddr>, Vec<SocketAddr>) =
                found.into_iter().partition(|a| allowance.permits(Some(&host), a.ip()));
            if kept.is_empty() && !refused.is_empty() {
                let addresses = AddressList(refused.iter().map(SocketAddr::ip).collect());
                return Err(Box::new(Refused::Name { name: host, addresses }) as _);
            }
            if !refused.is_empty() {
                tracing::debug!(name = %host, refused = %AddressList(refused.iter().map(SocketAddr::ip).collect()),
                    "Callback: leaving out addresses that are not allowed.");
            }
            let addrs: Addrs = Box::new(kept.into_iter());
            Ok(addrs)
        })
    }
}

/// The HTTP client callbacks are sent with: no redirects, no proxies, names resolved by
/// [`CheckedResolver`], `timeout` per try.
pub fn client(allowance: Arc<Allowance>, timeout: Duration) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .redirect(redirect::Policy::none())
        .no_proxy()
        .dns_resolver(CheckedResolver::new(allowance))
        .build()
}

/// What can be checked before connecting: the URL parses, its scheme is http or https, and an
/// IP-literal host is allowed. Names are checked by [`CheckedResolver`] when they are resolved.
pub(crate) fn check(url: &str, allowance: &Allowance) -> Result<Url, Refused> {
    let url = Url::parse(url).map_err(Refused::Url)?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Refused::Scheme(url.scheme().to_owned()));
    }
    // Whatever hyper would connect to without resolving it: the parser writes addresses in
    // their canonical form (`0x7f.1` becomes `127.0.0.1`, IPv6 in brackets).
    let literal = url.host_str().and_then(|h| h.trim_start_matches('[').trim_end_matches(']').parse().ok());
    match literal {
        Some(ip) if !allowance.permits(None, ip) => Err(Refused::Address(ip)),
        _ => Ok(url),
    }
}

/// The refusal inside a failed request, if the resolver refused it.
fn refusal(error: &reqwest::Error) -> Option<&Refused> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(refused) = e.downcast_ref::<Refused>() {
            return Some(refused);
        }
        source = e.source();
    }
    None
}

/// Delivers the callback for `sub`; failures are logged, never retried past `max_tries`, and a
/// refused destination is never tried at all.
pub(crate) async fn send(
    http: &reqwest::Client,
    allowance: &Allowance,
    url: &str,
    sub: &Submission,
    languages: &Languages,
    max_tries: u32,
) {
    let token = sub.token;
    let url = match check(url, allowance) {
        Ok(url) => url,
        Err(reason) => {
            tracing::warn!(%token, %reason, "Callback refused.");
            return;
        }
    };
    let Ok(body) = view::render(sub, &view::DEFAULT_FIELDS, true, languages) else { return };
    let body = serde_json::to_vec(&body).unwrap_or_default();
    for attempt in 1..=max_tries.max(1) {
        let sent = http
            .put(url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.clone())
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_redirection() => {
                let location = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .map(|l| String::from_utf8_lossy(l.as_bytes()).into_owned())
                    .unwrap_or_default();
                tracing::warn!(%token, status = %response.status(), %location,
                    "Callback answered with a redirect; callbacks do not follow redirects.");
                return;
            }
            Ok(response) => {
                tracing::debug!(%token, status = %response.status(), "Callback delivered.");
                return;
            }
            Err(error) => {
                if let Some(reason) = refusal(&error) {
                    tracing::warn!(%token, %reason, "Callback refused.");
                    return;
                }
                if error.is_connect() && attempt < max_tries {
                    tracing::warn!(%error, %token, attempt, "Callback connection failed; trying again.");
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                } else {
                    tracing::warn!(%error, %token, attempt, "Callback failed.");
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn public_addresses_need_no_allowance_and_others_do() {
        let none = Allowance::default();
        assert!(none.permits(None, ip("93.184.216.34")));
        assert!(none.permits(Some("example.com"), ip("2606:4700::1111")));
        for refused in ["127.0.0.1", "::1", "10.1.2.3", "169.254.169.254", "0.0.0.0", "::ffff:127.0.0.1"] {
            assert!(!none.permits(None, ip(refused)), "{refused}");
            assert!(!none.permits(Some("localhost"), ip(refused)), "{refused} by name");
        }
    }

    #[test]
    fn allowed_addresses_and_ranges() {
        let a = Allowance::parse("127.0.0.1, 10.0.0.0/8  fd00::/8").unwrap();
        assert!(a.permits(None, ip("127.0.0.1")));
        assert!(a.permits(Some("localhost"), ip("127.0.0.1")), "a name reaching an allowed address");
        assert!(a.permits(None, ip("::ffff:127.0.0.1")), "mapped IPv6 is the IPv4 address");
        assert!(a.permits(None, ip("10.200.0.9")) && a.permits(None, ip("fd12::1")));
        assert!(!a.permits(None, ip("127.0.0.2")) && !a.permits(None, ip("::1")));
        assert!(!a.permits(None, ip("192.168.1.1")) && !a.permits(None, ip("169.254.169.254")));
    }

    #[test]
    fn allowed_names_reach_any_address_but_only_by_name() {
        let a = Allowance::parse("hooks.internal LocalHost.").unwrap();
        assert!(a.permits(Some("hooks.internal"), ip("10.0.0.5")));
        assert!(a.permits(Some("HOOKS.internal."), ip("10.0.0.5")), "case and a final dot aside");
        assert!(a.permits(Some("localhost"), ip("127.0.0.1")) && a.permits(Some("localhost"), ip("::1")));
        assert!(!a.permits(Some("other.internal"), ip("10.0.0.5")));
        assert!(!a.permits(Some("sub.hooks.internal"), ip("10.0.0.5")), "exact names, no suffixes");
        assert!(!a.permits(None, ip("127.0.0.1")), "an allowed name does not allow its address");
    }

    #[test]
    fn bad_entries_name_the_variable() {
        assert_eq!(Allowance::parse(" , ").unwrap(), Allowance::default());
        for bad in ["10.0.0.0/33", "10.0.0.256", "http://hooks.internal", "[::1]", "a..b", "-x.internal"] {
            let error = Allowance::parse(&format!("127.0.0.1 {bad}")).unwrap_err();
            assert!(error.contains("CALLBACK_ALLOWED_HOSTS") && error.contains(bad), "{bad}: {error}");
        }
    }

    #[test]
    fn urls_checked_before_connecting() {
        let none = Allowance::default();
        let refused = |url: &str, a: &Allowance| check(url, a).err().map(|e| e.to_string());
        assert!(refused("http://127.0.0.1:9/x", &none).unwrap().contains("127.0.0.1 is not a public"));
        assert!(refused("http://[::ffff:7f00:1]/", &none).is_some());
        assert!(refused("http://0x7f.1/", &none).is_some(), "a URL parser's idea of an address counts");
        assert!(refused("http://[::1]:8080/", &none).is_some());
        assert!(refused("ftp://example.com/x", &none).unwrap().contains("ftp"));
        assert!(refused("not a url", &none).unwrap().contains("not a valid URL"));
        assert!(check("https://93.184.216.34/hook", &none).is_ok());
        // Names are left to the resolver.
        assert!(check("http://localhost:9/x", &none).is_ok());
        let loopback = Allowance::parse("127.0.0.0/8").unwrap();
        assert!(check("http://127.0.0.1:9/x", &loopback).is_ok());
    }

    #[tokio::test]
    async fn the_resolver_hands_out_only_allowed_addresses() {
        let resolve = |allowance: &str| {
            let resolver = CheckedResolver::new(Arc::new(Allowance::parse(allowance).unwrap()));
            resolver.resolve("localhost".parse().unwrap())
        };
        let error = resolve("").await.err().unwrap();
        let refused = error.downcast_ref::<Refused>().unwrap();
        assert!(refused.to_string().contains("`localhost` resolves only to"), "{refused}");
        for allowance in ["127.0.0.1", "localhost"] {
            let addrs: Vec<SocketAddr> = resolve(allowance).await.unwrap().collect();
            assert!(addrs.iter().any(|a| a.ip() == ip("127.0.0.1")), "{allowance}: {addrs:?}");
        }
    }
}
