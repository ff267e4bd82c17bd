//! The Kafka wire protocol server.
//!
//! [`serve`] accepts connections (`listener`: connection limits, descriptor reserve); `connection` frames bytes into requests (an `i32`
//! length, a request header v0–v2, the body) and responses; `dispatch` routes each
//! decoded request to its handler, one module per API family: `api_versions`,
//! `metadata`, `produce`, `fetch`, `list_offsets`, `topics` (create/delete/partitions),
//! `configs`, `delete_records`, `leader_epoch`, `describe_cluster`, `init_producer_id`,
//! `groups` (consumer groups and committed offsets). Codecs come from the `kafka-protocol` crate; handlers turn a decoded
//! request into calls on the cluster and the partition logs and back into a response.
//! `error` is the one place where strand's errors become Kafka error codes.

mod api_versions;
mod configs;
mod connection;
mod delete_records;
mod describe_cluster;
mod dispatch;
mod error;
mod fetch;
#[cfg(test)]
mod fuzz_corpus;
mod groups;
mod init_producer_id;
mod leader_epoch;
mod list_offsets;
mod listener;
mod lookup;
mod metadata;
mod produce;
mod response_budget;
mod response_buf;
mod topics;

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::Broker;

/// See [`crate::decode_request_frame`].
pub(crate) fn decode_request_frame(frame: bytes::Bytes) -> Result<(), String> {
    connection::decode_request(frame)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Accepts Kafka connections on `listener` for `broker` until `shutdown` turns true,
/// serving each on its own task (see `listener`).
pub async fn serve(broker: Arc<Broker>, listener: TcpListener, shutdown: watch::Receiver<bool>) {
    listener::serve(broker, listener, shutdown).await
}
