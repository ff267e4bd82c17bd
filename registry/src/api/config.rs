//! `/config` and `/mode`: the global and per-subject compatibility level and mode.

use axum::extract::State;
use serde::Deserialize;

use crate::registry::ConfigUpdate;

use super::{ApiResult, JsonBody, Params, PathParams, Shared, json};

#[derive(Deserialize)]
pub(super) struct ModeRequest {
    mode: Option<String>,
}

fn level_json(level: crate::compat::Level) -> axum::response::Response {
    json(&serde_json::json!({ "compatibilityLevel": level.as_str() }))
}

/// Confluent's config JSON: the level and the data-contract fields set.
fn config_json(
    level: crate::compat::Level,
    mut contract: serde_json::Map<String, serde_json::Value>,
) -> axum::response::Response {
    contract.insert("compatibilityLevel".into(), level.as_str().into());
    json(&serde_json::Value::Object(contract))
}

/// The answer to a `PUT /config`: what was set, as Confluent echoes it.
fn update_json(level: crate::compat::Level, update: &ConfigUpdate) -> axum::response::Response {
    let mut body = serde_json::json!({ "compatibility": level.as_str() });
    for (name, value) in [
        ("defaultMetadata", &update.default_metadata),
        ("overrideMetadata", &update.override_metadata),
        ("defaultRuleSet", &update.default_rule_set),
        ("overrideRuleSet", &update.override_rule_set),
    ] {
        if let Some(value) = value {
            body[name] = value.clone();
        }
    }
    json(&body)
}

fn mode_json(mode: crate::mode::Mode) -> axum::response::Response {
    json(&serde_json::json!({ "mode": mode.as_str() }))
}

pub(super) async fn get_global(State(registry): State<Shared>) -> ApiResult {
    Ok(config_json(
        registry.config(None, true)?,
        registry.config_contract(None, true),
    ))
}

pub(super) async fn put_global(
    State(registry): State<Shared>,
    JsonBody(request): JsonBody<ConfigUpdate>,
) -> ApiResult {
    let level = registry.set_config(None, &request).await?;
    Ok(update_json(level, &request))
}

pub(super) async fn delete_global(State(registry): State<Shared>) -> ApiResult {
    Ok(level_json(registry.delete_config(None).await?))
}

pub(super) async fn get_subject(
    State(registry): State<Shared>,
    PathParams(subject): PathParams<String>,
    params: Params,
) -> ApiResult {
    let default_to_global = params.flag("defaultToGlobal");
    Ok(config_json(
        registry.config(Some(&subject), default_to_global)?,
        registry.config_contract(Some(&subject), default_to_global),
    ))
}

pub(super) async fn put_subject(
    State(registry): State<Shared>,
    PathParams(subject): PathParams<String>,
    JsonBody(request): JsonBody<ConfigUpdate>,
) -> ApiResult {
    let level = registry.set_config(Some(&subject), &request).await?;
    Ok(update_json(level, &request))
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
