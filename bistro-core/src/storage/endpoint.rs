//! Which bucket endpoints a validator contacts: a miner's commitment names
//! any URL it likes, and a validator must not be made to read its own
//! machine, its private network or its cloud's metadata service for a miner.
//!
//! [`EndpointPolicy::Public`] (every Bittensor network) accepts only
//! `https://` endpoints whose host is a name — not an address literal — that
//! resolves to public addresses only: no loopback, private, shared (CGNAT),
//! link-local (which holds `169.254.169.254`, the metadata address of the
//! major clouds), unique-local, multicast, documentation, benchmarking or
//! reserved ranges, also when written as IPv4-mapped or NAT64 IPv6.
//! [`EndpointPolicy::Any`] accepts every valid commitment: the local network
//! (`file://` folders, `http://127.0.0.1` servers) and tests.
//!
//! The check runs when a commitment's bucket is opened
//! ([`open_bucket`](crate::storage::open_bucket)), and again on every
//! connection the bucket's reads make (`storage::s3::send`): the host is
//! resolved for each connection and refused if any address is not public, so
//! DNS rebinding does not get past it, and no redirect is ever followed (see
//! `docs/storage.md`, "Endpoint policy").

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, ToSocketAddrs};

use super::commitment::{BucketCommitment, EndpointKind};
use crate::error::{Error, Result};

/// What endpoints may be contacted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EndpointPolicy {
    /// `https://` to a host name with only public addresses (Bittensor).
    #[default]
    Public,
    /// Any valid commitment (the local network, tests).
    Any,
}

impl EndpointPolicy {
    /// Checks `commitment` against the policy; resolves its host for
    /// [`EndpointPolicy::Public`]. The error says why it is refused.
    pub fn check(&self, commitment: &BucketCommitment) -> Result<()> {
        let kind = commitment.endpoint_kind()?;
        if *self == EndpointPolicy::Any {
            return Ok(());
        }
        let refuse =
            |why: String| Error::Refused(format!("endpoint {}: {why}", commitment.endpoint));
        if kind != EndpointKind::Https {
            return Err(refuse("only https:// endpoints are contacted".into()));
        }
        let (host, port) = commitment
            .host_and_port()
            .ok_or_else(|| refuse("no host".into()))?;
        if host.parse::<IpAddr>().is_ok() || !host.contains('.') {
            return Err(refuse(
                "the host must be a public DNS name, not an address".into(),
            ));
        }
        let addresses: Vec<IpAddr> = (host, port)
            .to_socket_addrs()
            .map_err(|e| refuse(format!("{host} does not resolve: {e}")))?
            .map(|a| a.ip())
            .collect();
        if addresses.is_empty() {
            return Err(refuse(format!("{host} resolves to no address")));
        }
        if let Some(private) = addresses.iter().find(|ip| !is_public(**ip)) {
            return Err(refuse(format!(
                "{host} resolves to {private}, which is not a public address"
            )));
        }
        Ok(())
    }
}

/// Whether `ip` is a public unicast address (see the module docs).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let special = ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240; // reserved
    !special
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let s = ip.segments();
    // NAT64 (64:ff9b::/96) embeds an IPv4 address in the last 32 bits.
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        let v4 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
        return is_public_v4(v4);
    }
    let special = ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x0100 && s[1..4] == [0, 0, 0]) // discard-only
        || s[..6] == [0, 0, 0, 0, 0, 0]; // IPv4-compatible and other ::/96
    !special
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_loopback_link_local_and_metadata_addresses_are_not_public() {
        for bad in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.2.1",
            "198.18.0.1",
            "240.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "fec0::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe", // 169.254.169.254 via NAT64
            "::127.0.0.1",
        ] {
            let ip: IpAddr = bad.parse().unwrap();
            assert!(!is_public(ip), "{bad}");
        }
        for good in [
            "1.1.1.1",
            "8.8.8.8",
            "52.216.0.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            let ip: IpAddr = good.parse().unwrap();
            assert!(is_public(ip), "{good}");
        }
    }

    #[test]
    fn the_public_policy_refuses_what_is_not_https_to_a_public_name() {
        let dir = tempfile::tempdir().unwrap();
        let local = BucketCommitment::local(&dir.path().canonicalize().unwrap(), "bucket").unwrap();
        for c in [
            local.clone(),
            BucketCommitment::public("http://example.com", "bucket"),
            BucketCommitment::public("https://127.0.0.1:9000", "bucket"),
            BucketCommitment::public("https://169.254.169.254", "bucket"),
            BucketCommitment::public("https://localhost", "bucket"),
        ] {
            let e = EndpointPolicy::Public.check(&c).unwrap_err();
            assert!(e.to_string().contains("refused"), "{c:?}: {e}");
            EndpointPolicy::Any.check(&c).ok();
        }
        // `localhost.localdomain`-style names resolve to loopback on most
        // machines; where they resolve at all they must be refused.
        let c = BucketCommitment::public("https://localhost.localdomain", "bucket");
        assert!(EndpointPolicy::Public.check(&c).is_err());
        EndpointPolicy::Any.check(&local).unwrap();
    }
}
