//! `/config` and `/mode`: the global and per-subject compatibility level and mode.

use axum::extract::State;
use serde::Deserialize;

use super::{ApiResult, JsonBody, Params, PathParams, Shared, json};

#[derive(Deserialize)]
pub(super) struct ConfigRequest {
    #[serde(alias = "compatibilityLevel")]
    compatibility: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct ModeRequest {
    mode: Option<String>,
}

fn level_json(level: crate::compat::Level) -> axum::response::Response {
    json(&serde_json::json!({ "compatibilityLevel": level.as_str() }))
}

fn mode_json(mode: crate::mode::Mode) -> axum::response::Response {
    json(&serde_json::json!({ "mode": mode.as_str() }))
}

pub(super) async fn get_global(State(registry): State<Shared>) -> ApiResult {
    Ok(level_json(registry.config(None, true)?))
}

pub(super) async fn put_global(
    State(registry): State<Shared>,
    JsonBody(request): JsonBody<ConfigRequest>,
) -> ApiResult {
    let level = registry
        .set_config(None, request.compatibility.as_deref().unwrap_or(""))
        .await?;
    Ok(json(
        &serde_json::json!({ "compatibility": level.as_str() }),
    ))
}

pub(super) async fn delete_global(State(registry): State<Shared>) -> ApiResult {
    Ok(level_json(registry.delete_config(None).await?))
}

pub(super) async fn get_subject(
    State(registry): State<Shared>,
    PathParams(subject): PathParams<String>,
    params: Params,
) -> ApiResult {
    Ok(level_json(
        registry.config(Some(&subject), params.flag("defaultToGlobal"))?,
    ))
}

pub(super) async fn put_subject(
    State(registry): State<Shared>,
    PathParams(subject): PathParams<String>,
    JsonBody(request): JsonBody<ConfigRequest>,
) -> ApiResult {
    let level = registry
        .set_config(
            Some(&subject),
            request.compatibility.as_deref().unwrap_or(""),
        )
        .await?;
    Ok(json(
        &serde_json::json!({ "compatibility": level.as_str() }),
    ))
}

pub(super) async fn delete_subject(
    State(registry): State<Shared>,
    PathParams(subject): PathParams<String>,
) -> ApiResult {
    Ok(level_json(registry.delete_config(Some(&subject)).await?))
}

pub(super) async fn get_global_mode(State(registry): State<Shared>) -> ApiResult {
    Ok(mode_json(registry.mode(None, true)?))
}

pub(super) async fn put_global_mode(
    State(registry): State<Shared>,
    params: Params,
    JsonBody(request): JsonBody<ModeRequest>,
) -> ApiResult {
    let mode = registry
        .set_mode(
            None,
            request.mode.as_deref().unwrap_or(""),
            params.flag("force"),
        )
        .await?;
    Ok(mode_json(mode))
}

pub(super) async fn delete_global_mode(State(registry): State<Shared>) -> ApiResult {
    Ok(mode_json(registry.delete_mode(None).await?))
}

pub(super) async fn get_subject_mode(
    State(registry): State<Shared>,
    PathParams(subject): PathParams<String>,
    params: Params,
) -> ApiResult {
    Ok(mode_json(
        registry.mode(Some(&subject), params.flag("defaultToGlobal"))?,
    ))
}

pub(super) async fn put_subject_mode(
    State(registry): State<Shared>,
    PathParams(subject): PathParams<String>,
    params: Params,
    JsonBody(request): JsonBody<ModeRequest>,
) -> ApiResult {
    let mode = registry
        .set_mode(
            Some(&subject),
            request.mode.as_deref().unwrap_or(""),
            params.flag("force"),
        )
        .await?;
    Ok(mode_json(mode))
}

pub(super) async fn delete_subject_mode(
    State(registry): State<Shared>,
    PathParams(subject): PathParams<String>,
) -> ApiResult {
    Ok(mode_json(registry.delete_mode(Some(&subject)).await?))
}
