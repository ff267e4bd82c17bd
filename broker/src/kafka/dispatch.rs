//! Request dispatch: one `match` from a decoded request to its handler.
//!
//! Each handler takes the [`RequestContext`] and the decoded request and returns the
//! response struct; the match wraps it into a [`Reply`]. Dispatch returns the reply as a
//! future ([`Pending`]) that the connection runs in arrival order, so that side effects of
//! pipelined requests (appends above all) happen in the order the client sent them. A
//! handler whose answer only waits (acks=all waiting for an fsync) returns
//! [`Reply::Later`], so that the requests behind it run meanwhile and share that fsync.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use kafka_protocol::messages::{RequestHeader, RequestKind, ResponseKind};

use super::response_budget::{Grant, ResponseBudget};
use super::{
    api_versions, configs, delete_records, describe_cluster, fetch, groups, init_producer_id,
    leader_epoch, list_offsets, metadata, produce, topics,
};
use crate::Broker;

/// Everything a handler knows about the request besides its body.
pub(crate) struct RequestContext {
    /// The broker serving it.
    pub(crate) broker: Arc<Broker>,
    /// The process-wide budget of built-but-unsent Fetch responses.
    pub(crate) budget: Arc<ResponseBudget>,
    /// The decoded request header (API version, correlation id, client id).
    pub(crate) header: RequestHeader,
    /// The client's address, for log lines and group member descriptions.
    pub(crate) peer: SocketAddr,
}

impl RequestContext {
    /// The API version of the request.
    pub(crate) fn version(&self) -> i16 {
        self.header.request_api_version
    }
}

/// What the connection does after a request.
#[allow(clippy::large_enum_variant)] // one per request, moved once: boxing would only add an allocation
pub(crate) enum Reply {
    /// Send this response.
    Response(ResponseKind),
    /// Send this response, which holds a share of the process's response budget until it
    /// is written (a Fetch response and its batches).
    Budgeted(ResponseKind, Grant),
    /// Send nothing (Produce with acks=0).
    None,
    /// Close the connection (Produce with acks=0 that failed, as Kafka does), saying why.
    Close(String),
    /// The request's effects are done; its answer comes when this (already running) future
    /// resolves, while the connection goes on with the requests behind it (acks=all waiting
    /// for its fsync).
    Later(Pending),
}

/// A request's answer, run by the connection after the answers of earlier requests.
pub(crate) type Pending = Pin<Box<dyn Future<Output = Reply> + Send>>;

/// Routes a decoded request to its handler.
pub(crate) fn dispatch(ctx: RequestContext, request: RequestKind) -> Pending {
    Box::pin(async move {
        match request {
            RequestKind::ApiVersions(req) => {
                Reply::Response(ResponseKind::ApiVersions(api_versions::handle(&ctx, req)))
            }
            RequestKind::Metadata(req) => {
                Reply::Response(ResponseKind::Metadata(metadata::handle(&ctx, req).await))
            }
            RequestKind::Produce(req) => produce::handle(&ctx, req).await,
            RequestKind::Fetch(req) => match fetch::handle(&ctx, req).await {
                (response, Some(grant)) => Reply::Budgeted(ResponseKind::Fetch(response), grant),
                (response, None) => Reply::Response(ResponseKind::Fetch(response)),
            },
            RequestKind::ListOffsets(req) => Reply::Response(ResponseKind::ListOffsets(
                list_offsets::handle(&ctx, req).await,
            )),
            RequestKind::CreateTopics(req) => Reply::Response(ResponseKind::CreateTopics(
                topics::handle_create(&ctx, req).await,
            )),
            RequestKind::DeleteTopics(req) => Reply::Response(ResponseKind::DeleteTopics(
                topics::handle_delete(&ctx, req).await,
            )),
            RequestKind::CreatePartitions(req) => Reply::Response(ResponseKind::CreatePartitions(
                topics::handle_create_partitions(&ctx, req).await,
            )),
            RequestKind::DescribeConfigs(req) => Reply::Response(ResponseKind::DescribeConfigs(
                configs::handle_describe(&ctx, req),
            )),
            RequestKind::AlterConfigs(req) => Reply::Response(ResponseKind::AlterConfigs(
                configs::handle_alter(&ctx, req).await,
            )),
            RequestKind::IncrementalAlterConfigs(req) => Reply::Response(
                ResponseKind::IncrementalAlterConfigs(configs::handle_incremental(&ctx, req).await),
            ),
            RequestKind::DeleteRecords(req) => Reply::Response(ResponseKind::DeleteRecords(
                delete_records::handle(&ctx, req).await,
            )),
            RequestKind::OffsetForLeaderEpoch(req) => Reply::Response(
                ResponseKind::OffsetForLeaderEpoch(leader_epoch::handle(&ctx, req)),
            ),
            RequestKind::DescribeCluster(req) => Reply::Response(ResponseKind::DescribeCluster(
                describe_cluster::handle(&ctx, req),
            )),
            RequestKind::InitProducerId(req) => Reply::Response(ResponseKind::InitProducerId(
                init_producer_id::handle(&ctx, req).await,
            )),
            RequestKind::FindCoordinator(req) => Reply::Response(ResponseKind::FindCoordinator(
                groups::find_coordinator(&ctx, req),
            )),
            RequestKind::JoinGroup(req) => {
                Reply::Response(ResponseKind::JoinGroup(groups::join_group(&ctx, req).await))
            }
            RequestKind::SyncGroup(req) => {
                Reply::Response(ResponseKind::SyncGroup(groups::sync_group(&ctx, req).await))
            }
            RequestKind::Heartbeat(req) => {
                Reply::Response(ResponseKind::Heartbeat(groups::heartbeat(&ctx, req).await))
            }
            RequestKind::LeaveGroup(req) => Reply::Response(ResponseKind::LeaveGroup(
                groups::leave_group(&ctx, req).await,
            )),
            RequestKind::OffsetCommit(req) => Reply::Response(ResponseKind::OffsetCommit(
                groups::offset_commit(&ctx, req).await,
            )),
            RequestKind::OffsetFetch(req) => Reply::Response(ResponseKind::OffsetFetch(
                groups::offset_fetch(&ctx, req).await,
            )),
            RequestKind::OffsetDelete(req) => Reply::Response(ResponseKind::OffsetDelete(
                groups::offset_delete(&ctx, req).await,
            )),
            RequestKind::ListGroups(req) => Reply::Response(ResponseKind::ListGroups(
                groups::list_groups(&ctx, req).await,
            )),
            RequestKind::DescribeGroups(req) => Reply::Response(ResponseKind::DescribeGroups(
                groups::describe_groups(&ctx, req).await,
            )),
            RequestKind::DeleteGroups(req) => Reply::Response(ResponseKind::DeleteGroups(
                groups::delete_groups(&ctx, req).await,
            )),
            other => Reply::Close(format!(
                "no handler for {:?} (it is not advertised in ApiVersions)",
                api_name(&other)
            )),
        }
    })
}

fn api_name(request: &RequestKind) -> String {
    let debug = format!("{request:?}");
    debug
        .split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or_default()
        .to_string()
}
