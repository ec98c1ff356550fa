//! Ports for servers this process starts as children (Pebble in the bench and the tests).
//!
//! A port taken from the kernel's ephemeral range (bind to port 0, then closed) can be given
//! again by the kernel to the next socket bound to port 0 (a gateway's listener, a client's
//! source port) before the child binds it; the end-to-end tests once lost lego's tls-alpn-01
//! responder's port to the gateway that way. These ports come from below that range and are
//! never handed out twice by one process.

use std::net::{Ipv4Addr, TcpListener};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::LazyLock;

/// Below Linux's default ephemeral range (32768-60999).
const FIRST: u32 = 16384;
const SPAN: u32 = 16384;

/// The next offset into the span. Each process starts at its own place (by pid), so that
/// processes picking ports side by side (test binaries) start apart.
static NEXT: LazyLock<AtomicU32> =
    LazyLock::new(|| AtomicU32::new((std::process::id() % 64) * (SPAN / 64)));

/// The first of `n` consecutive ports on 127.0.0.1 that were free a moment ago.
pub fn free_ports(n: u16) -> std::io::Result<u16> {
    let n = u32::from(n.max(1));
    for _ in 0..SPAN {
        let offset = NEXT.fetch_add(n, Ordering::Relaxed) % SPAN;
        if offset + n > SPAN {
            continue;
        }
        let first = FIRST + offset;
        let all_free = (first..first + n)
            .all(|port| TcpListener::bind((Ipv4Addr::LOCALHOST, port as u16)).is_ok());
        if all_free {
            return Ok(first as u16);
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AddrInUse,
        format!(
            "no {n} free consecutive ports on 127.0.0.1 in {FIRST}..{}",
            FIRST + SPAN
        ),
    ))
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> std::io::Result<u16> {
    free_ports(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ports are outside the ephemeral range, never repeat, and a run of two is two free ports.
    #[test]
    fn ports_are_below_the_ephemeral_range_and_never_repeat() {
        let ports: Vec<u16> = (0..50).map(|_| free_port().unwrap()).collect();
        assert!(
            ports.iter().all(|&p| (16384..32768).contains(&p)),
            "{ports:?}"
        );
        let mut unique = ports.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), ports.len(), "{ports:?}");
        let first = free_ports(2).unwrap();
        assert!(!ports.contains(&first) && !ports.contains(&(first + 1)));
        TcpListener::bind((Ipv4Addr::LOCALHOST, first + 1))
            .expect("the second of the pair is free");
    }
}
