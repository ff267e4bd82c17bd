//! `/subjects/...` and `/compatibility/subjects/...`: registering, listing, looking up,
//! deleting and compatibility-testing the versions of a subject.

use axum::extract::State;
use axum::response::IntoResponse;

use super::{ApiResult, JsonBody, Params, PathParams, Shared, json};
use crate::registry::{SchemaRequest, VersionSpec};

pub(super) async fn list(State(registry): State<Shared>, params: Params) -> ApiResult {
    // As Confluent: without a prefix, the subjects of every context.
    let prefix = params.get("subjectPrefix").unwrap_or(":*:");
    let subjects = registry.subjects(prefix, params.lookup_filter());
    Ok(json(&params.page(subjects)?))
}

pub(super) async fn versions(
    State(registry): State<Shared>,
    PathParams(subject): PathParams<String>,
    params: Params,
) -> ApiResult {
    let versions = registry.versions(&subject, params.lookup_filter())?;
    Ok(json(&params.page(versions)?))
}

pub(super) async fn register(
    State(registry): State<Shared>,
    PathParams(subject): PathParams<String>,
    params: Params,
    JsonBody(request): JsonBody<SchemaRequest>,
) -> ApiResult {
    let id = registry
        .register(&subject, &request, params.flag("normalize"))
        .await?;
    Ok(json(&serde_json::json!({ "id": id })))
}

pub(super) async fn version(
    State(registry): State<Shared>,
    PathParams((subject, version)): PathParams<(String, String)>,
    params: Params,
) -> ApiResult {
    let spec = VersionSpec::parse(&version)?;
    let found = registry.version(&subject, spec, params.flag("deleted"))?;
    let schema = registry.formatted(&found, params.get("format"));
    Ok(json(&found.to_json_with(&schema)))
}

pub(super) async fn version_schema(
    State(registry): State<Shared>,
    PathParams((subject, version)): PathParams<(String, String)>,
    params: Params,
) -> ApiResult {
    let spec = VersionSpec::parse(&version)?;
    let found = registry.version(&subject, spec, params.flag("deleted"))?;
    let schema = registry.formatted(&found, params.get("format"));
    Ok(super::raw_json(schema.into()))
}

/// `GET /subjects/{s}/metadata?key=k&value=v...`: the latest version whose metadata
/// properties hold every pair (the n-th `key` goes with the n-th `value`).
pub(super) async fn latest_with_metadata(
    State(registry): State<Shared>,
    PathParams(subject): PathParams<String>,
    params: Params,
) -> ApiResult {
    let pairs: Vec<(&str, &str)> = params
        .all("key")
        .into_iter()
        .zip(params.all("value"))
        .collect();
    let found = registry.latest_with_metadata(&subject, &pairs, params.flag("deleted"))?;
    Ok(json(&found.to_json()))
}

pub(super) async fn referenced_by(
    State(registry): State<Shared>,
    PathParams((subject, version)): PathParams<(String, String)>,
) -> ApiResult {
    let spec = VersionSpec::parse(&version)?;
    Ok(json(&registry.referenced_by(&subject, spec)?))
}

pub(super) async fn lookup(
    State(registry): State<Shared>,
    PathParams(subject): PathParams<String>,
    params: Params,
    JsonBody(request): JsonBody<SchemaRequest>,
) -> ApiResult {
    let found = registry
        .lookup(
            &subject,
            &request,
            params.flag("normalize"),
            params.flag("deleted"),
        )
        .await?;
    Ok(json(&found.to_json()))
}

pub(super) async fn delete_subject(
    State(registry): State<Shared>,
    PathParams(subject): PathParams<String>,
    params: Params,
) -> ApiResult {
    let deleted = registry
        .delete_subject(&subject, params.flag("permanent"))
        .await?;
    Ok(json(&deleted))
}

pub(super) async fn delete_version(
    State(registry): State<Shared>,
    PathParams((subject, version)): PathParams<(String, String)>,
    params: Params,
) -> ApiResult {
    let spec = VersionSpec::parse(&version)?;
    let deleted = registry
        .delete_version(&subject, spec, params.flag("permanent"))
        .await?;
    Ok(json(&deleted))
}

fn compatibility_response(messages: Vec<String>, verbose: bool) -> axum::response::Response {
    let mut body = serde_json::json!({ "is_compatible": messages.is_empty() });
    if verbose {
        body["messages"] = messages.into();
    }
    json(&body).into_response()
}

pub(super) async fn compatibility_all(
    State(registry): State<Shared>,
    PathParams(subject): PathParams<String>,
    params: Params,
    JsonBody(request): JsonBody<SchemaRequest>,
) -> ApiResult {
    let messages = registry
        .test_compatibility(&subject, None, &request, params.flag("normalize"))
        .await?;
    Ok(compatibility_response(messages, params.flag("verbose")))
}

pub(super) async fn compatibility_version(
    State(registry): State<Shared>,
    PathParams((subject, version)): PathParams<(String, String)>,
    params: Params,
    JsonBody(request): JsonBody<SchemaRequest>,
) -> ApiResult {
    let spec = VersionSpec::parse(&version)?;
    let messages = registry
        .test_compatibility(&subject, Some(spec), &request, params.flag("normalize"))
        .await?;
    Ok(compatibility_response(messages, params.flag("verbose")))
}
