//! Listening ports for servers a test may restart on the same port.
//!
//! A port the kernel hands out for `bind(0)` lies in its ephemeral range
//! (`/proc/sys/net/ipv4/ip_local_port_range`, 32768–60999 by default), the same range it takes
//! outgoing connections' local ports from. A server stopped and restarted on such a port can find
//! it held by somebody's outgoing connection in between, and refuse to start. Ports picked here
//! lie outside that range, so only another listener can hold them — and the caller retries.

use std::net::TcpListener;
use std::time::{SystemTime, UNIX_EPOCH};

/// The kernel's ephemeral range, `(low, high)` inclusive; Linux's default when unreadable.
pub fn ephemeral_range() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| {
            let mut it = text.split_whitespace().map(|n| n.parse::<u16>().ok());
            Some((it.next()??, it.next()??))
        })
        .unwrap_or((32768, 60999))
}

/// The ports tests choose from: the largest stretch outside the ephemeral range, above the
/// well-known and commonly configured ports (below 10000).
fn candidate_range() -> (u16, u16) {
    let (low, high) = ephemeral_range();
    let below = (10_000u16, low.saturating_sub(1));
    let above = (high.saturating_add(1).max(10_000), 65_535u16);
    let width = |(a, b): (u16, u16)| b.saturating_sub(a);
    if width(below) >= width(above) {
        below
    } else {
        above
    }
}

/// A port outside the ephemeral range that was free a moment ago. Two tests may still pick the
/// same one between the probe and their server's bind: callers retry with another.
pub fn free_port() -> u16 {
    let (from, to) = candidate_range();
    let span = u64::from(to - from) + 1;
    // Seeded from the clock and the process id: concurrent test processes start apart.
    let mut seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
        ^ (u64::from(std::process::id()) << 32);
    for _ in 0..1000 {
        // xorshift64: enough spread for picking ports.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let port = from + (seed % span) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {from}–{to} outside the ephemeral range");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picked_ports_lie_outside_the_ephemeral_range() {
        let (low, high) = ephemeral_range();
        for _ in 0..50 {
            let p = free_port();
            assert!(!(low..=high).contains(&p), "{p} in {low}–{high}");
            assert!(p >= 10_000);
        }
    }
}
