//! `/schemas/...`: schemas by global id (the hot path: a precomputed body per id), the
//! supported schema types, and the list of every schema.

use axum::extract::State;

use super::{ApiError, ApiResult, Params, PathParams, Shared, json, raw_json};

fn parse_id(text: &str) -> Result<u32, ApiError> {
    match text.parse::<i64>() {
        Ok(id) if (1..=i64::from(u32::MAX)).contains(&id) => Ok(id as u32),
        Ok(id) => Err(ApiError::new(40403, format!("Schema {id} not found"))),
        Err(_) => Err(ApiError::new(404, "HTTP 404 Not Found")),
    }
}

/// Whether a subject using an id is one the `subject` parameter asks for: all without it or
/// when it names only a context (`:.ctx:`, which chose the id's context).
fn wanted(params: &Params, subject: &str) -> bool {
    params.get("subject").is_none_or(|s| {
        crate::context::QualifiedSubject::parse(s)
            .subject
            .is_empty()
            || crate::context::normalize(s) == subject
    })
}

/// `GET /schemas/ids/{id}`; `?subject=` takes the id in that subject's context.
pub(super) async fn by_id(
    State(registry): State<Shared>,
    PathParams(id): PathParams<String>,
    params: Params,
) -> ApiResult {
    let id = parse_id(&id)?;
    let body = match params.get("format").filter(|f| !f.trim().is_empty()) {
        Some(format) => registry.schema_body_formatted(params.get("subject"), id, format),
        None => registry.schema_body_by_id(params.get("subject"), id),
    };
    match body {
        Some(body) => Ok(raw_json(body)),
        None => Err(ApiError::new(40403, format!("Schema {id} not found"))),
    }
}

pub(super) async fn text_by_id(
    State(registry): State<Shared>,
    PathParams(id): PathParams<String>,
    params: Params,
) -> ApiResult {
    let id = parse_id(&id)?;
    Ok(raw_json(
        registry
            .schema_text_by_id(params.get("subject"), id, params.get("format"))?
            .into(),
    ))
}

pub(super) async fn versions_of_id(
    State(registry): State<Shared>,
    PathParams(id): PathParams<String>,
    params: Params,
) -> ApiResult {
    let id = parse_id(&id)?;
    let versions: Vec<serde_json::Value> = registry
        .id_versions(params.get("subject"), id, params.flag("deleted"))?
        .into_iter()
        .filter(|(subject, _)| wanted(&params, subject))
        .map(|(subject, version)| serde_json::json!({"subject": subject, "version": version}))
        .collect();
    Ok(json(&params.page(versions)?))
}

pub(super) async fn subjects_of_id(
    State(registry): State<Shared>,
    PathParams(id): PathParams<String>,
    params: Params,
) -> ApiResult {
    let id = parse_id(&id)?;
    let mut subjects: Vec<String> = registry
        .id_versions(params.get("subject"), id, params.flag("deleted"))?
        .into_iter()
        .map(|(subject, _)| subject)
        .filter(|subject| wanted(&params, subject))
        .collect();
    subjects.dedup();
    Ok(json(&params.page(subjects)?))
}

pub(super) async fn types() -> ApiResult {
    Ok(json(&crate::format::served_types()))
}

pub(super) async fn list(State(registry): State<Shared>, params: Params) -> ApiResult {
    let all: Vec<serde_json::Value> = registry
        .all_versions(
            params.get("subjectPrefix").unwrap_or(""),
            params.flag("deleted"),
            params.flag("latestOnly"),
        )
        .iter()
        .map(|v| v.to_json())
        .collect();
    Ok(json(&params.page(all)?))
}
