//! The plain-HTTP rule, in one place: plain HTTP only to this machine (loopback, including
//! IPv4-mapped loopback) unless the user allowed it. Used for the registry, its token server
//! and every redirect hop, so the three can never disagree.

use std::net::IpAddr;

use url::Url;

/// Whether a registry name (`host[:port]`) is on this machine.
pub(crate) fn is_loopback_registry(registry: &str) -> bool {
    let host = if let Some(rest) = registry.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        registry.split(':').next().unwrap_or(registry)
    };
    host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(is_loopback_ip)
}

/// Whether a URL's host is on this machine (the same answer as [`is_loopback_registry`]).
pub(crate) fn is_loopback_url(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(a)) => is_loopback_ip(IpAddr::V4(a)),
        Some(url::Host::Ipv6(a)) => is_loopback_ip(IpAddr::V6(a)),
        None => false,
    }
}

/// Loopback, counting IPv4-mapped IPv6 (`::ffff:127.0.0.1`) as loopback: the kernel delivers
/// it to 127.0.0.1, so traffic to it never leaves the machine (Go's `IsLoopback` agrees).
fn is_loopback_ip(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

/// Whether plain HTTP to `url` is acceptable: loopback, or allowed by the user. Applied to
/// the registry itself, its token server and every redirect hop alike.
pub(crate) fn plain_http_allowed(url: &Url, allow_http: bool) -> bool {
    allow_http || is_loopback_url(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback() {
        for r in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:5000",
            "127.1.2.3",
            "[::1]:5000",
            "[::ffff:127.0.0.1]:5000",
            "LOCALHOST",
        ] {
            assert!(is_loopback_registry(r), "{r}");
        }
        for r in [
            "example.com",
            "10.0.0.1:5000",
            "[fe80::1]:5000",
            "[::ffff:10.0.0.1]:5000",
            "localhost.example.com",
        ] {
            assert!(!is_loopback_registry(r), "{r}");
        }
        // A URL host gets the same answer as a registry name.
        for (u, want) in [
            ("http://[::ffff:127.0.0.1]:5000/", true),
            ("http://[::1]/", true),
            ("http://127.9.9.9/", true),
            ("http://[::ffff:10.0.0.1]/", false),
            ("http://10.0.0.1/", false),
        ] {
            assert_eq!(is_loopback_url(&Url::parse(u).unwrap()), want, "{u}");
        }
    }
}
