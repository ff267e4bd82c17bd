//! InitProducerId: gives an idempotent producer its id and epoch.
//!
//! A new producer gets a fresh id (never reused, even after a restart, and never given by
//! another broker of the cluster: it comes from this broker's block of the controller's)
//! with epoch 0. A
//! producer that presents its current id and epoch (KIP-360, after a sequence error) keeps
//! its id with the epoch bumped; when the epoch would overflow it gets a fresh id.
//! Transactions are not supported: a transactional id is refused.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use super::dispatch::RequestContext;
use super::error::cluster_error;
use crate::broker::AllocateError;

/// Answers InitProducerId.
pub(crate) async fn handle(
    ctx: &RequestContext,
    req: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let failed = |code: ResponseError| {
        InitProducerIdResponse::default()
            .with_error_code(code.code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
    };
    if req.transactional_id.is_some() {
        return failed(ResponseError::TransactionalIdAuthorizationFailed);
    }
    let (id, epoch) = (req.producer_id.0, req.producer_epoch);
    if id >= 0 && (0..i16::MAX - 1).contains(&epoch) {
        return InitProducerIdResponse::default()
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(epoch + 1);
    }
    match ctx.broker.allocate_producer_id().await {
        Ok(id) => InitProducerIdResponse::default()
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(0),
        // Retriable, as Kafka answers while its producer id block is being fetched.
        Err(AllocateError::Controller(e)) => {
            tracing::warn!("allocating a producer id: {e}");
            failed(ResponseError::CoordinatorLoadInProgress)
        }
        Err(AllocateError::Local(e)) => {
            tracing::error!("allocating a producer id failed: {e}");
            failed(cluster_error(&e))
        }
        Err(AllocateError::Internal(e)) => {
            tracing::error!("allocating a producer id failed: {e}");
            failed(ResponseError::UnknownServerError)
        }
    }
}
