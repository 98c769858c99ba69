//! Which resolved addresses a tenant may reach: public ones, and private ones only when allowed.
//!
//! The special-purpose ranges come from the `ip_network` crate's tables of the IANA IPv4 and
//! IPv6 special-purpose registries (`is_global`). On top of them, by hand because no crate does
//! it: IPv4 multicast and all IPv6 multicast (never an HTTP origin), the discard prefix, the
//! IETF protocol block `2001::/23` (Teredo among it), and every IPv6 form that carries an IPv4
//! address (mapped, compatible, NAT64 `64:ff9b::/96` and `64:ff9b:1::/48`, 6to4 `2002::/16`),
//! whose embedded address is classified again: in an IPv6-only cluster, `64:ff9b::a9fe:a9fe` is
//! a route to the metadata service at 169.254.169.254.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ip_network::{Ipv4Network, Ipv6Network};

/// Why an address is not public, if it is not: loopback, private, link-local, and the like.
pub fn non_public(ip: IpAddr) -> Option<String> {
    match ip {
        IpAddr::V4(v4) => non_public_v4(v4).map(str::to_string),
        IpAddr::V6(v6) => non_public_v6(v6),
    }
}

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let network = Ipv4Network::from(ip);
    // The registry's exceptions (192.0.0.9 and .10 are global) are the table's to know.
    if network.is_global() && !network.is_multicast() {
        return None;
    }
    let kind = if network.is_loopback() {
        "loopback"
    } else if network.is_private() {
        "private"
    } else if network.is_link_local() {
        "link-local"
    } else if network.is_local_identification() {
        "unspecified (this network)"
    } else if network.is_shared_address_space() {
        "shared address space (carrier-grade NAT)"
    } else if network.is_benchmarking() {
        "benchmarking"
    } else if network.is_documentation() {
        "documentation"
    } else if network.is_ietf_protocol_assignments() {
        "IETF protocol assignment"
    } else if network.is_multicast() || network.is_broadcast() || network.is_reserved() {
        "broadcast, multicast or reserved"
    } else {
        "special-purpose"
    };
    Some(kind)
}

fn non_public_v6(ip: Ipv6Addr) -> Option<String> {
    if let Some((form, v4)) = embedded_v4(ip) {
        return non_public_v4(v4).map(|kind| format!("{kind} ({v4} in an {form} address)"));
    }
    let segments = ip.segments();
    let network = Ipv6Network::from(ip);
    let kind = if network.is_loopback() {
        "loopback"
    } else if network.is_unspecified() {
        "unspecified"
    } else if network.is_unique_local() {
        "private (unique local)"
    } else if network.is_unicast_link_local() {
        "link-local"
    } else if network.is_unicast_site_local() {
        "site-local (deprecated)"
    } else if network.is_documentation() {
        "documentation"
    } else if network.is_multicast() {
        "multicast"
    } else if segments[..4] == [0x100, 0, 0, 0] {
        "discard-only"
    } else if segments[0] == 0x2001 && segments[1] == 0 {
        "Teredo tunnel"
    } else if segments[0] == 0x2001 && segments[1] < 0x200 {
        "IETF protocol assignment"
    } else if !network.is_global() {
        "special-purpose"
    } else {
        return None;
    };
    Some(kind.to_string())
}

/// The IPv4 address an IPv6 address carries, with the form's name.
fn embedded_v4(ip: Ipv6Addr) -> Option<(&'static str, Ipv4Addr)> {
    let s = ip.segments();
    let low = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(("IPv4-mapped", v4));
    }
    if s[..6] == [0; 6] && !ip.is_loopback() && !ip.is_unspecified() {
        return Some(("IPv4-compatible", low(s[6], s[7])));
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] || s[..3] == [0x64, 0xff9b, 1] {
        return Some(("NAT64", low(s[6], s[7])));
    }
    if s[0] == 0x2002 {
        return Some(("6to4", low(s[1], s[2])));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_each_special_range_and_every_embedded_ipv4_form() {
        for (ip, kind) in [
            ("127.0.0.1", Some("loopback")),
            ("10.1.2.3", Some("private")),
            ("172.16.0.1", Some("private")),
            ("192.168.1.1", Some("private")),
            ("169.254.169.254", Some("link-local")),
            ("100.64.0.1", Some("shared address space")),
            ("0.0.0.0", Some("unspecified")),
            ("198.18.0.1", Some("benchmarking")),
            ("198.19.255.254", Some("benchmarking")),
            ("192.0.0.8", Some("IETF protocol assignment")),
            ("192.0.2.1", Some("documentation")),
            ("198.51.100.7", Some("documentation")),
            ("203.0.113.9", Some("documentation")),
            ("224.0.0.1", Some("multicast")),
            ("255.255.255.255", Some("broadcast")),
            ("240.0.0.1", Some("reserved")),
            ("::1", Some("loopback")),
            ("::", Some("unspecified")),
            ("fd00::1", Some("unique local")),
            ("fe80::1", Some("link-local")),
            ("fec0::1", Some("site-local")),
            ("2001:db8::1", Some("documentation")),
            ("ff0e::1", Some("multicast")),
            ("100::1", Some("discard-only")),
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", Some("Teredo")),
            ("2001:10::1", Some("IETF protocol assignment")),
            ("::ffff:127.0.0.1", Some("loopback (127.0.0.1 in an IPv4-mapped address)")),
            ("::10.0.0.1", Some("private (10.0.0.1 in an IPv4-compatible address)")),
            ("64:ff9b::a9fe:a9fe", Some("link-local (169.254.169.254 in an NAT64 address)")),
            ("64:ff9b:1::7f00:1", Some("loopback (127.0.0.1 in an NAT64 address)")),
            ("2002:c0a8:0101::1", Some("private (192.168.1.1 in an 6to4 address)")),
            ("2002:7f00:0001::1", Some("loopback (127.0.0.1 in an 6to4 address)")),
            ("93.184.216.34", None),
            ("192.0.0.9", None),
            ("2606:4700::1111", None),
            ("64:ff9b::5db8:d822", None),
            ("::ffff:93.184.216.34", None),
        ] {
            let parsed: IpAddr = ip.parse().unwrap();
            let found = non_public(parsed);
            match kind {
                None => assert_eq!(found, None, "{ip}"),
                Some(kind) => assert!(
                    found.as_deref().is_some_and(|f| f.contains(kind)),
                    "{ip}: {found:?}, expected {kind}"
                ),
            }
        }
    }
}
