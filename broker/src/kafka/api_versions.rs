//! ApiVersions: the table of APIs and versions strand serves, answered as Kafka 4.x does.
//!
//! A client asks first which versions of each API the broker supports and then uses the
//! highest one both sides know. Only what is implemented is advertised. A request of a
//! version newer than ours gets a v0 response with `UNSUPPORTED_VERSION` listing only
//! ApiVersions' own range (KIP-511), so that the client retries with a version we know.
//!
//! The response carries no feature tagged fields: a single broker has no finalized
//! features to report, and older librdkafka (Debian's kcat) fails to parse them.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse, ResponseKind};

use super::dispatch::RequestContext;

/// Every API strand serves, with the lowest and highest version: Kafka 4.4's ranges where
/// the codec allows them.
pub(crate) const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    // Kafka 4 no longer serves Produce v0-v2 but still advertises them (KAFKA-18659):
    // older librdkafka refuses to compress unless Produce v0 is listed. Such a request is
    // refused by closing the connection, as Kafka does.
    (ApiKey::Produce, 0, 13),
    (ApiKey::Fetch, 4, 18),
    (ApiKey::ListOffsets, 1, 10),
    (ApiKey::Metadata, 0, 13),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::OffsetForLeaderEpoch, 2, 4),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::DescribeCluster, 0, 2),
    (ApiKey::FindCoordinator, 0, 6),
    (ApiKey::JoinGroup, 2, 9),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::OffsetCommit, 2, 9),
    (ApiKey::OffsetFetch, 1, 9),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::DescribeGroups, 0, 6),
    (ApiKey::DeleteGroups, 0, 2),
];

/// The version range served for `api`, if any.
pub(crate) fn range(api: ApiKey) -> Option<(i16, i16)> {
    SUPPORTED
        .iter()
        .find(|(k, _, _)| *k == api)
        .map(|(_, min, max)| (*min, *max))
}

/// True if strand serves `version` of `api`.
pub(crate) fn is_supported(api: ApiKey, version: i16) -> bool {
    range(api).is_some_and(|(min, max)| (min..=max).contains(&version))
}

fn api_version(api: ApiKey, min: i16, max: i16) -> ApiVersion {
    ApiVersion::default()
        .with_api_key(api as i16)
        .with_min_version(min)
        .with_max_version(max)
}

/// Answers ApiVersions.
pub(crate) fn handle(_ctx: &RequestContext, _req: ApiVersionsRequest) -> ApiVersionsResponse {
    let mut keys: Vec<ApiVersion> = SUPPORTED
        .iter()
        .map(|(api, min, max)| api_version(*api, *min, *max))
        .collect();
    keys.sort_by_key(|k| k.api_key);
    ApiVersionsResponse::default().with_api_keys(keys)
}

/// The v0 answer to an ApiVersions request of a version newer than ours.
pub(crate) fn unsupported_version() -> ResponseKind {
    let (min, max) = range(ApiKey::ApiVersions).unwrap_or((0, 0));
    ResponseKind::ApiVersions(
        ApiVersionsResponse::default()
            .with_error_code(ResponseError::UnsupportedVersion.code())
            .with_api_keys(vec![api_version(ApiKey::ApiVersions, min, max)]),
    )
}
