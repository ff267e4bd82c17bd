//! DescribeCluster: the cluster id, the controller and the broker list (this broker).

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
    let (host, port) = broker.config().advertised();
    DescribeClusterResponse::default()
        .with_endpoint_type(if ctx.version() >= 1 { BROKERS } else { 1 })
        .with_cluster_id(StrBytes::from_string(
            broker.topics().cluster_id().to_string(),
        ))
        .with_controller_id(BrokerId(broker.node_id()))
        .with_brokers(vec![
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(broker.node_id()))
                .with_host(StrBytes::from_string(host.to_string()))
                .with_port(port),
        ])
}
