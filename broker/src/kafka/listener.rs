//! The Kafka listener's accept loop: connection limits and a reserve of file descriptors.
//!
//! Each accepted connection takes a [`Slot`] counting it against `max.connections` and
//! `max.connections.per.ip`; a connection beyond either is closed at once with a log line,
//! as Kafka's Acceptor closes one beyond `max.connections.per.ip`. When the process runs
//! out of descriptors (EMFILE/ENFILE), the loop neither spins nor gives up: it releases a
//! descriptor kept in reserve for this, accepts the pending connection and closes it (so
//! the client learns at once instead of hanging in the backlog), takes the reserve back,
//! and backs off for a moment; the log line saying so is rate-limited.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::watch;

use super::connection;
use super::response_budget::ResponseBudget;
use crate::Broker;

/// Longest pause after the process ran out of descriptors.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Shortest interval between two log lines about refused connections.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Open connections, in all and per client address.
#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// A connection's place in the counts, given back when it closes.
#[derive(Debug)]
pub(crate) struct Slot {
    counts: Arc<Mutex<Counts>>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts.total = counts.total.saturating_sub(1);
        if let Some(n) = counts.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.per_ip.remove(&self.ip);
            }
        }
    }
}

/// Why a connection was not admitted.
#[derive(Debug, thiserror::Error)]
enum Refused {
    #[error("{0} connections are open (max.connections)")]
    Total(usize),
    #[error("{0} connections from this address are open (max.connections.per.ip)")]
    PerIp(usize),
}

fn admit(
    counts: &Arc<Mutex<Counts>>,
    ip: IpAddr,
    max: usize,
    max_per_ip: usize,
) -> Result<Slot, Refused> {
    let mut c = counts.lock().unwrap_or_else(|e| e.into_inner());
    if c.total >= max {
        return Err(Refused::Total(c.total));
    }
    let from_ip = c.per_ip.get(&ip).copied().unwrap_or(0);
    if from_ip >= max_per_ip {
        return Err(Refused::PerIp(from_ip));
    }
    c.total += 1;
    *c.per_ip.entry(ip).or_insert(0) += 1;
    Ok(Slot {
        counts: counts.clone(),
        ip,
    })
}

/// A log line at most every [`LOG_EVERY`], saying how many were suppressed meanwhile.
#[derive(Debug, Default)]
struct RateLimited {
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimited {
    fn warn(&mut self, what: std::fmt::Arguments<'_>) {
        let now = Instant::now();
        if self.last.is_some_and(|l| now.duration_since(l) < LOG_EVERY) {
            self.suppressed += 1;
            return;
        }
        tracing::warn!(suppressed = self.suppressed, "{what}");
        self.last = Some(now);
        self.suppressed = 0;
    }
}

/// A descriptor held only to be given up when the process has none left.
fn reserve() -> Option<std::fs::File> {
    std::fs::File::open("/dev/null").ok()
}

fn out_of_descriptors(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE))
}

/// Accepts Kafka connections on `listener` until `shutdown` turns true, serving each on
/// its own task.
pub(crate) async fn serve(
    broker: Arc<Broker>,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
) {
    let budget = Arc::new(ResponseBudget::new(
        broker.config().queued_max_response_bytes,
    ));
    let counts = Arc::new(Mutex::new(Counts::default()));
    let max = broker.config().max_connections;
    let max_per_ip = broker.config().max_connections_per_ip;
    let mut spare = reserve();
    let mut refusals = RateLimited::default();
    let mut exhausted = RateLimited::default();
    let mut backoff = Duration::from_millis(10);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = crate::shutdown::stopped(&mut shutdown) => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                backoff = Duration::from_millis(10);
                if spare.is_none() {
                    spare = reserve();
                }
                match admit(&counts, peer.ip(), max, max_per_ip) {
                    Ok(slot) => {
                        tracing::debug!(%peer, "kafka connection accepted");
                        tokio::spawn(connection::run(
                            broker.clone(),
                            budget.clone(),
                            stream,
                            peer,
                            slot,
                        ));
                    }
                    Err(why) => {
                        refusals.warn(format_args!("refused kafka connection from {peer}: {why}"));
                        drop(stream);
                    }
                }
            }
            Err(e) if out_of_descriptors(&e) => {
                // Give the reserve up for the one connection waiting, so that its client is
                // told (closed) instead of left hanging, then take it back.
                drop(spare.take());
                if let Ok(Ok((stream, peer))) =
                    tokio::time::timeout(Duration::from_millis(1), listener.accept()).await
                {
                    drop(stream);
                    exhausted.warn(format_args!(
                        "out of file descriptors: closed kafka connection from {peer} at once ({e})"
                    ));
                } else {
                    exhausted.warn(format_args!("accepting a kafka connection failed: {e}"));
                }
                spare = reserve();
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = crate::shutdown::stopped(&mut shutdown) => return,
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            Err(e) => {
                exhausted.warn(format_args!("accepting a kafka connection failed: {e}"));
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = crate::shutdown::stopped(&mut shutdown) => return,
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_count_per_address_and_are_given_back() {
        let counts = Arc::new(Mutex::new(Counts::default()));
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let first = admit(&counts, a, 3, 2).ok();
        let second = admit(&counts, a, 3, 2).ok();
        assert!(matches!(admit(&counts, a, 3, 2), Err(Refused::PerIp(2))));
        let third = admit(&counts, b, 3, 2).ok();
        assert!(matches!(admit(&counts, b, 3, 2), Err(Refused::Total(3))));
        drop(first);
        assert!(admit(&counts, a, 3, 2).is_ok());
        drop((second, third));
    }
}
