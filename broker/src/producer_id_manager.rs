//! Producer ids in a cluster (Kafka's `RPCProducerIdManager`): a broker hands out ids from
//! a block the active controller gave it (`ProducerIdBlock` in the metadata log), and asks
//! for the next block when one runs out, so that no two brokers, and no two processes of
//! one broker, ever give the same id. A block starts at or after the ids this node handed
//! out before it was part of a cluster (its `cluster/producer-ids`), so an upgraded node
//! does not reuse them either. Ids left in a block at shutdown are never used.

use std::ops::Range;

use crate::controller::{Controller, ControllerError, ControllerReply, ControllerRequest};

/// This broker's current block of producer ids.
#[derive(Debug, Default)]
pub(crate) struct ProducerIdManager {
    block: tokio::sync::Mutex<Range<i64>>,
}

impl ProducerIdManager {
    /// A fresh producer id: the next of the block, asking the controller for a new block
    /// (at `floor` or later) when the block is used up.
    pub(crate) async fn next(
        &self,
        controller: &Controller,
        node_id: i32,
        floor: i64,
    ) -> Result<i64, ControllerError> {
        let mut block = self.block.lock().await;
        if block.is_empty() {
            let reply = controller
                .request(ControllerRequest::AllocateProducerIds { node_id, floor })
                .await?;
            let ControllerReply::ProducerIds { first, size } = reply else {
                return Err(ControllerError::Raft(format!(
                    "the controller answered a producer id request with {reply:?}"
                )));
            };
            tracing::info!(node_id, first, size, "producer id block received");
            *block = first..first.saturating_add(size);
        }
        let id = block.start;
        block.start += 1;
        Ok(id)
    }
}
