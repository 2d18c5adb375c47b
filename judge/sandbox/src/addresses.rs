//! Which network addresses are public: the one definition of "somewhere on the internet" that
//! every outbound path of the cluster applies (network-enabled boxes, callbacks).
//!
//! Everything else is refused unless an operator allows it: loopback, private and shared
//! ranges, link-local (where cloud metadata services live), multicast, documentation and
//! benchmarking ranges, and the IPv6 prefixes that embed IPv4 addresses (so that
//! `::ffff:127.0.0.1` or a NAT64 address cannot stand in for a refused IPv4 one).

use std::net::IpAddr;

use ipnet::IpNet;

/// Ranges that are not the public internet (RFC 6890 and its successors), as CIDR text.
pub const NON_PUBLIC: &[&str] = &[
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.88.99.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "::/128",
    "::1/128",
    "::ffff:0:0/96",
    "64:ff9b::/96",
    "64:ff9b:1::/48",
    "100::/64",
    "2001::/23",
    "2001:db8::/32",
    "2002::/16",
    "fc00::/7",
    "fe80::/10",
    "fec0::/10",
    "ff00::/8",
];

/// [`NON_PUBLIC`], parsed.
pub fn non_public() -> Vec<IpNet> {
    NON_PUBLIC.iter().filter_map(|r| r.parse().ok()).collect()
}

/// Whether `ip` is on the public internet. An IPv4-mapped IPv6 address is judged as the IPv4
/// address it carries.
pub fn is_public(ip: IpAddr) -> bool {
    let ip = ip.to_canonical();
    !non_public().iter().any(|net| net.contains(&ip))
}

/// Parses an operator's list of CIDRs (or single addresses), separated by spaces or commas.
pub fn parse_cidrs(list: &str) -> Result<Vec<IpNet>, String> {
    list.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map(|n| n.trunc())
                .map_err(|_| format!("`{s}` is not an IP address or CIDR range"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_range_parses() {
        assert_eq!(non_public().len(), NON_PUBLIC.len());
    }

    #[test]
    fn public_and_non_public_addresses() {
        for ip in ["1.1.1.1", "93.184.216.34", "2606:4700::1111", "8.8.8.8"] {
            assert!(is_public(ip.parse().unwrap()), "{ip} is public");
        }
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.31.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.100.100.200",
            "0.0.0.0",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "fd00::1",
            "fe80::1",
            "224.0.0.1",
            "255.255.255.255",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip} is not public");
        }
    }

    #[test]
    fn cidr_lists() {
        let nets = parse_cidrs("10.0.0.0/8, 127.0.0.1  fd00::/8").unwrap();
        assert_eq!(nets.len(), 3);
        assert!(nets[1].contains(&"127.0.0.1".parse::<IpAddr>().unwrap()));
        assert!(parse_cidrs("").unwrap().is_empty());
        assert!(parse_cidrs("10.0.0.0/33").unwrap_err().contains("10.0.0.0/33"));
        assert!(parse_cidrs("example.com").is_err());
    }
}
