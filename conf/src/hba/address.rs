//! Addresses in pg_hba.conf: numeric IPv4/IPv6 parsing as the C library's
//! `getaddrinfo(AI_NUMERICHOST)` accepts it, CIDR masks, and matching.
//!
//! IPv4 accepts the historical `inet_aton` forms PostgreSQL accepts through
//! the C library: `1.2.3` is 1.2.0.3, `01.2.3.4` is octal, `0x1.2.3.4` hex.
//! An IPv6 address may carry a `%zone`, which is ignored.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One `inet_aton` part: decimal, octal (leading 0) or hex (0x).
fn aton_part(s: &str) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let (digits, radix) = if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (hex, 16)
    } else if s.len() > 1 && s.starts_with('0') {
        (&s[1..], 8)
    } else {
        (s, 10)
    };
    if digits.is_empty() {
        return if radix == 16 { None } else { Some(0) };
    }
    u64::from_str_radix(digits, radix)
        .ok()
        .filter(|v| *v <= u32::MAX as u64)
}

fn inet_aton(s: &str) -> Option<Ipv4Addr> {
    let parts: Vec<u64> = s.split('.').map(aton_part).collect::<Option<_>>()?;
    let value: u64 = match parts.as_slice() {
        [a] => *a,
        [a, b] if *a < 256 && *b < 1 << 24 => a << 24 | b,
        [a, b, c] if *a < 256 && *b < 256 && *c < 1 << 16 => a << 24 | b << 16 | c,
        [a, b, c, d] if [a, b, c, d].iter().all(|v| **v < 256) => a << 24 | b << 16 | c << 8 | d,
        _ => return None,
    };
    u32::try_from(value).ok().map(Ipv4Addr::from)
}

/// A numeric IP address, or None (then pg_hba.conf treats it as a host name).
pub fn parse_ip(s: &str) -> Option<IpAddr> {
    if s.contains(':') {
        let without_zone = s.split_once('%').map_or(s, |(addr, _)| addr);
        return without_zone.parse::<Ipv6Addr>().ok().map(IpAddr::V6);
    }
    inet_aton(s).map(IpAddr::V4)
}

/// The netmask of a CIDR length (`/24`), or None when the length is not a
/// number in range for the family.
pub fn cidr_mask(bits: &str, like: IpAddr) -> Option<IpAddr> {
    let bits = bits.trim_start();
    if bits.is_empty()
        || !bits
            .trim_start_matches(['+', '-'])
            .bytes()
            .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let n: i64 = bits.parse().ok()?;
    match like {
        IpAddr::V4(_) if (0..=32).contains(&n) => {
            let mask = if n == 0 { 0 } else { u32::MAX << (32 - n) };
            Some(IpAddr::V4(Ipv4Addr::from(mask)))
        }
        IpAddr::V6(_) if (0..=128).contains(&n) => {
            let mask = if n == 0 { 0 } else { u128::MAX << (128 - n) };
            Some(IpAddr::V6(Ipv6Addr::from(mask)))
        }
        _ => None,
    }
}

/// Whether `client` falls in `addr`/`mask`. An IPv4-mapped IPv6 client
/// (`::ffff:1.2.3.4`) is compared as IPv4 against IPv4 rules.
pub fn in_range(client: IpAddr, addr: IpAddr, mask: IpAddr) -> bool {
    let client = match (client, addr) {
        (IpAddr::V6(v6), IpAddr::V4(_)) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => return false,
        },
        _ => client,
    };
    match (client, addr, mask) {
        (IpAddr::V4(c), IpAddr::V4(a), IpAddr::V4(m)) => {
            u32::from(c) & u32::from(m) == u32::from(a) & u32::from(m)
        }
        (IpAddr::V6(c), IpAddr::V6(a), IpAddr::V6(m)) => {
            u128::from(c) & u128::from(m) == u128::from(a) & u128::from(m)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_accepts_inet_aton_forms() {
        assert_eq!(parse_ip("127.0.0.1"), Some("127.0.0.1".parse().unwrap()));
        assert_eq!(parse_ip("01.2.3.4"), Some("1.2.3.4".parse().unwrap()));
        assert_eq!(parse_ip("1.2.3"), Some("1.2.0.3".parse().unwrap()));
        assert_eq!(parse_ip("0x1.2.3.4"), Some("1.2.3.4".parse().unwrap()));
        assert_eq!(parse_ip("1.2.3.256"), None);
        assert_eq!(parse_ip("foo.example.com"), None);
        assert_eq!(parse_ip("trust"), None);
    }

    #[test]
    fn ipv6_ignores_the_zone() {
        assert_eq!(parse_ip("fe80::1%eth0"), Some("fe80::1".parse().unwrap()));
        assert_eq!(
            parse_ip("::ffff:1.2.3.4"),
            Some("::ffff:1.2.3.4".parse().unwrap())
        );
    }

    #[test]
    fn cidr_masks_and_ranges() {
        let v4: IpAddr = "10.0.0.0".parse().unwrap();
        assert_eq!(cidr_mask("8", v4), Some("255.0.0.0".parse().unwrap()));
        assert_eq!(cidr_mask("0", v4), Some("0.0.0.0".parse().unwrap()));
        assert_eq!(cidr_mask("33", v4), None);
        assert_eq!(cidr_mask("", v4), None);
        assert_eq!(cidr_mask("-1", v4), None);
        assert_eq!(cidr_mask("x", v4), None);
        assert_eq!(cidr_mask("32.5", v4), None);
        assert_eq!(cidr_mask("129", "::1".parse().unwrap()), None);
        let mask = cidr_mask("24", v4).unwrap();
        let net: IpAddr = "1.2.3.5".parse().unwrap();
        assert!(in_range("1.2.3.200".parse().unwrap(), net, mask));
        assert!(!in_range("1.2.4.1".parse().unwrap(), net, mask));
        assert!(in_range("::ffff:1.2.3.9".parse().unwrap(), net, mask));
        assert!(!in_range("::1".parse().unwrap(), net, mask));
    }
}
