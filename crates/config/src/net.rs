//! Loopback ports for nodes started on one machine (devnets, tests).

use std::net::{SocketAddr, TcpListener};

/// The lowest port [`free_loopback_port`] picks.
const MIN_PORT: u16 = 10_000;

/// A free loopback port for a node to listen on later. It is picked below the range the OS
/// hands out by itself (for `bind(0)` and every outgoing connection: Linux's
/// `ip_local_port_range`, 32768-60999 by default), so that none of the many ports the OS
/// assigns between this pick and the node's bind can be this one; only if that range leaves
/// no room is the OS asked.
pub fn free_loopback_port() -> std::io::Result<SocketAddr> {
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768);
    let span = u64::from(low.saturating_sub(MIN_PORT));
    if span >= 1_000 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let mut x = nanos ^ (u64::from(std::process::id()) << 32);
        for _ in 0..64 {
            // splitmix64: spread the picks of processes started side by side.
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            let port = MIN_PORT + (z % span) as u16;
            if let Ok(l) = TcpListener::bind(("127.0.0.1", port)) {
                if let Ok(addr) = l.local_addr() {
                    return Ok(addr);
                }
            }
        }
    }
    TcpListener::bind("127.0.0.1:0")?.local_addr()
}

#[cfg(test)]
mod tests {
    #[test]
    fn picks_are_free_and_below_the_ephemeral_range() {
        let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
            .unwrap_or(32_768);
        for _ in 0..20 {
            let a = super::free_loopback_port().unwrap();
            assert!(a.ip().is_loopback());
            if low >= 11_000 {
                assert!(a.port() >= super::MIN_PORT && a.port() < low, "{a}");
            }
            std::net::TcpListener::bind(a).unwrap();
        }
    }
}
