//! DescribeCluster: the cluster id, the active controller and the live brokers of the
//! metadata image.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;

use super::dispatch::RequestContext;

/// `endpoint_type` asking for brokers (the other value, 2, asks for controllers).
const BROKERS: i8 = 1;

/// Answers DescribeCluster.
pub(crate) fn handle(ctx: &RequestContext, req: DescribeClusterRequest) -> DescribeClusterResponse {
    let broker = &ctx.broker;
    if ctx.version() >= 1 && req.endpoint_type != BROKERS {
        return DescribeClusterResponse::default()
            .with_error_code(ResponseError::UnsupportedEndpointType.code())
            .with_error_message(Some(StrBytes::from_static_str(
                "strand has no separate controllers; ask for brokers",
            )))
            .with_endpoint_type(req.endpoint_type);
    }
    let (brokers, controller) = super::metadata::live_brokers(broker);
    DescribeClusterResponse::default()
        .with_endpoint_type(if ctx.version() >= 1 { BROKERS } else { 1 })
        .with_cluster_id(StrBytes::from_string(
            broker.topics().cluster_id().to_string(),
        ))
        .with_controller_id(BrokerId(controller))
        .with_brokers(
            brokers
                .into_iter()
                .map(|(id, host, port)| {
                    DescribeClusterBroker::default()
                        .with_broker_id(BrokerId(id))
                        .with_host(StrBytes::from_string(host))
                        .with_port(port)
                })
                .collect(),
        )
}
