//! [`ResponseBudget`]: the process-wide bound on the bytes of Fetch responses built but not
//! yet sent (`queued.max.response.bytes`).
//!
//! A Fetch response holds the record batches it read until the client has taken them off
//! the socket. A client that pipelines large fetches and never reads would otherwise pin
//! one `fetch.max.bytes` per request it sent; with the budget, a fetch reads only as many
//! bytes as the budget grants it (what is free, and at least a small floor it waits for),
//! and the [`Grant`] travels with the response until its last byte is written. Each
//! connection further mutes its reads while its own unsent responses exceed
//! `connection.queued.max.response.bytes` (see `connection`), as Kafka's SocketServer mutes
//! a channel with a response in flight.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The smallest grant a fetch waits for when the budget is short: enough for a useful
/// answer, small enough that a starved budget still serves many fetches.
const FLOOR: usize = 1024 * 1024;

/// Bytes of built-but-unsent Fetch responses the whole process may hold.
#[derive(Debug)]
pub(crate) struct ResponseBudget {
    free: Arc<Semaphore>,
    total: usize,
}

impl ResponseBudget {
    /// A budget of `total` bytes (at most `u32::MAX`).
    pub(crate) fn new(total: usize) -> ResponseBudget {
        let total = total.clamp(1, u32::MAX as usize);
        ResponseBudget {
            free: Arc::new(Semaphore::new(total)),
            total,
        }
    }

    /// Grants up to `want` bytes: as much as is free now, but at least `need` (or the
    /// floor), waiting until that much is free. A grant is never larger than the budget.
    pub(crate) async fn grant(&self, want: usize, need: usize) -> Grant {
        let want = want.min(self.total);
        let least = need.max(FLOOR).min(want).min(self.total);
        let bytes = self.free.available_permits().min(want).max(least);
        match self.free.clone().acquire_many_owned(bytes as u32).await {
            Ok(permit) => Grant {
                permit: Some(permit),
                bytes,
                free: self.free.clone(),
                total: self.total,
            },
            // The semaphore is never closed; an ungranted fetch reads nothing.
            Err(_) => Grant {
                permit: None,
                bytes: 0,
                free: self.free.clone(),
                total: self.total,
            },
        }
    }
}

/// Bytes of the budget held by one response until it is written.
#[derive(Debug)]
pub(crate) struct Grant {
    permit: Option<OwnedSemaphorePermit>,
    bytes: usize,
    free: Arc<Semaphore>,
    total: usize,
}

impl Grant {
    /// The bytes granted.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether this grant is the whole budget (nothing larger can ever be granted).
    pub(crate) fn is_whole_budget(&self) -> bool {
        self.bytes >= self.total
    }

    /// Grows the grant to `to` bytes if that much is free now.
    pub(crate) fn try_grow(&mut self, to: usize) -> bool {
        if to <= self.bytes {
            return true;
        }
        match self
            .free
            .clone()
            .try_acquire_many_owned((to - self.bytes) as u32)
        {
            Ok(more) => {
                match &mut self.permit {
                    Some(permit) => permit.merge(more),
                    None => self.permit = Some(more),
                }
                self.bytes = to;
                true
            }
            Err(_) => false,
        }
    }

    /// Returns what exceeds `to` bytes to the budget.
    pub(crate) fn shrink(&mut self, to: usize) {
        if to >= self.bytes {
            return;
        }
        if let Some(permit) = &mut self.permit {
            drop(permit.split(self.bytes - to));
        }
        self.bytes = to;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn grants_shrink_to_what_is_free_and_return_it_when_dropped() {
        let budget = ResponseBudget::new(10 * FLOOR);
        let mut first = budget.grant(8 * FLOOR, 0).await;
        assert_eq!(first.bytes(), 8 * FLOOR);
        let second = budget.grant(8 * FLOOR, 0).await;
        assert_eq!(second.bytes(), 2 * FLOOR, "only what is free");
        assert!(!first.try_grow(9 * FLOOR), "nothing left to grow into");
        first.shrink(FLOOR);
        assert_eq!(budget.free.available_permits(), 7 * FLOOR);
        drop(second);
        drop(first);
        assert_eq!(budget.free.available_permits(), 10 * FLOOR);
    }
}
