//! IP addresses and prefixes, as IPAM and keepalived need them.

use std::fmt;
use std::net::IpAddr;

/// An address with a prefix length, `10.11.0.0/16` or `fd00::1/64`. The
/// address may have host bits set (a VIP is written `10.0.10.39/24`); use
/// [`Cidr::is_network`] where only a network address makes sense.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    /// Parse `address/prefix`; the message says what is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let Some((addr, prefix)) = text.split_once('/') else {
            return Err(format!(
                "`{text}` is not in address/prefix form (like 10.0.0.0/24)"
            ));
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{addr}` in `{text}` is not an IPv4 or IPv6 address"))?;
        let max = max_prefix(addr);
        let prefix: u8 = prefix.parse().ok().filter(|p| *p <= max).ok_or_else(|| {
            format!("prefix `/{prefix}` in `{text}` must be a number from 0 to {max}")
        })?;
        Ok(Cidr { addr, prefix })
    }

    /// 32 for IPv4, 128 for IPv6.
    #[must_use]
    pub fn max_prefix(&self) -> u8 {
        max_prefix(self.addr)
    }

    /// The network address (host bits cleared).
    #[must_use]
    pub fn network(&self) -> IpAddr {
        from_bits(self.addr, bits(self.addr) & mask(self.addr, self.prefix))
    }

    /// Whether the address is the network address itself.
    #[must_use]
    pub fn is_network(&self) -> bool {
        self.network() == self.addr
    }

    /// Whether `ip` lies inside this prefix.
    #[must_use]
    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.addr.is_ipv4()
            && bits(ip) & mask(ip, self.prefix) == bits(self.addr) & mask(self.addr, self.prefix)
    }

    /// Whether `other` lies entirely inside this prefix.
    #[must_use]
    pub fn contains_cidr(&self, other: &Cidr) -> bool {
        other.prefix >= self.prefix && self.contains(other.addr)
    }

    /// Whether the two prefixes share any address.
    #[must_use]
    pub fn overlaps(&self, other: &Cidr) -> bool {
        self.contains_cidr(other) || other.contains_cidr(self)
    }

    /// The IPv4 broadcast address of the prefix (none for IPv6 or /31, /32).
    #[must_use]
    pub fn broadcast(&self) -> Option<IpAddr> {
        (self.addr.is_ipv4() && self.prefix < 31).then(|| {
            from_bits(
                self.addr,
                bits(self.addr) | !mask(self.addr, self.prefix) & 0xffff_ffff,
            )
        })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

fn max_prefix(ip: IpAddr) -> u8 {
    if ip.is_ipv4() { 32 } else { 128 }
}

fn bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn from_bits(like: IpAddr, bits: u128) -> IpAddr {
    match like {
        IpAddr::V4(_) => IpAddr::V4((bits as u32).into()),
        IpAddr::V6(_) => IpAddr::V6(bits.into()),
    }
}

fn mask(ip: IpAddr, prefix: u8) -> u128 {
    let width = u32::from(max_prefix(ip));
    let prefix = u32::from(prefix).min(width);
    let all = if width == 128 {
        u128::MAX
    } else {
        (1u128 << width) - 1
    };
    if prefix == 0 {
        0
    } else {
        all & !((1u128 << (width - prefix)) - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(s: &str) -> Cidr {
        Cidr::parse(s).unwrap()
    }

    #[test]
    fn prefixes_contain_their_hosts_only() {
        let net = cidr("10.11.0.0/16");
        assert!(net.contains("10.11.0.2".parse().unwrap()));
        assert!(!net.contains("10.12.0.2".parse().unwrap()));
        assert!(!net.contains("::1".parse().unwrap()));
        assert!(cidr("fd00::/64").contains("fd00::5".parse().unwrap()));
        assert!(cidr("0.0.0.0/0").contains("1.2.3.4".parse().unwrap()));
    }

    #[test]
    fn host_bits_and_broadcast_are_computed() {
        assert!(!cidr("10.11.0.1/16").is_network());
        assert_eq!(cidr("10.11.0.1/16").network().to_string(), "10.11.0.0");
        assert_eq!(
            cidr("10.11.0.0/16").broadcast().unwrap().to_string(),
            "10.11.255.255"
        );
        assert!(cidr("fd00::1/128").broadcast().is_none());
    }

    #[test]
    fn overlapping_prefixes_are_found() {
        assert!(cidr("10.0.0.0/8").overlaps(&cidr("10.1.0.0/16")));
        assert!(cidr("10.1.0.0/16").overlaps(&cidr("10.0.0.0/8")));
        assert!(!cidr("10.1.0.0/16").overlaps(&cidr("10.2.0.0/16")));
    }

    #[test]
    fn malformed_prefixes_are_explained() {
        for bad in [
            "10.0.0.0",
            "10.0.0/8",
            "10.0.0.0/33",
            "fd00::/129",
            "x/8",
            "10.0.0.0/-1",
            "/",
        ] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }
}
