//! The HTTP API: Confluent Schema Registry's routes, request and response shapes, content
//! types and error bodies (`{"error_code": 40401, "message": "..."}`), over a [`Registry`].
//! Everything a client can get wrong — a malformed body, an unknown route, a body over the
//! limit — gets a Confluent error body, never a framework's plain-text default.

mod config;
mod schemas;
mod subjects;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::error::{RegistryError, status_of};
use crate::registry::{LookupFilter, Registry};

/// The content type of every response, unless the request's `Accept` prefers another of
/// [`PRODUCED`].
pub(crate) const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// The media types responses can be given, with the weights Confluent's resources declare
/// (Jersey's `qs`), which break ties between equally acceptable types.
const PRODUCED: [(&str, f32); 3] = [
    (CONTENT_TYPE, 1.0),
    ("application/vnd.schemaregistry+json", 0.9),
    ("application/json", 0.5),
];

/// Request content types accepted (any parameters such as `charset` aside), all read as
/// JSON: Confluent's resources also consume `application/octet-stream` (its "generic
/// request"), which some HTTP clients send by default.
const ACCEPTED_TYPES: [&str; 4] = [
    "application/vnd.schemaregistry.v1+json",
    "application/vnd.schemaregistry+json",
    "application/json",
    "application/octet-stream",
];

/// The OpenAPI document of this API.
const OPENAPI: &str = include_str!("openapi.json");

type Shared = Arc<Registry>;

/// The registry's HTTP routes.
pub fn router(registry: Arc<Registry>) -> Router {
    Router::new()
        .route("/", get(root))
        .route("/v1/metadata/id", get(metadata_id))
        .route("/openapi.json", get(openapi))
        .route("/contexts", get(contexts))
        .route("/schemas", get(schemas::list))
        .route("/schemas/types", get(schemas::types))
        .route("/schemas/ids/{id}", get(schemas::by_id))
        .route("/schemas/ids/{id}/schema", get(schemas::text_by_id))
        .route("/schemas/ids/{id}/versions", get(schemas::versions_of_id))
        .route("/schemas/ids/{id}/subjects", get(schemas::subjects_of_id))
        .route("/subjects", get(subjects::list))
        .route(
            "/subjects/{subject}",
            post(subjects::lookup).delete(subjects::delete_subject),
        )
        .route(
            "/subjects/{subject}/metadata",
            get(subjects::latest_with_metadata),
        )
        .route(
            "/subjects/{subject}/versions",
            get(subjects::versions).post(subjects::register),
        )
        .route(
            "/subjects/{subject}/versions/{version}",
            get(subjects::version).delete(subjects::delete_version),
        )
        .route(
            "/subjects/{subject}/versions/{version}/schema",
            get(subjects::version_schema),
        )
        .route(
            "/subjects/{subject}/versions/{version}/referencedby",
            get(subjects::referenced_by),
        )
        .route(
            "/compatibility/subjects/{subject}/versions",
            post(subjects::compatibility_all),
        )
        .route(
            "/compatibility/subjects/{subject}/versions/{version}",
            post(subjects::compatibility_version),
        )
        .route(
            "/config",
            get(config::get_global)
                .put(config::put_global)
                .delete(config::delete_global),
        )
        .route(
            "/config/{subject}",
            get(config::get_subject)
                .put(config::put_subject)
                .delete(config::delete_subject),
        )
        .route(
            "/mode",
            get(config::get_global_mode)
                .put(config::put_global_mode)
                .delete(config::delete_global_mode),
        )
        .route(
            "/mode/{subject}",
            get(config::get_subject_mode)
                .put(config::put_subject_mode)
                .delete(config::delete_subject_mode),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn(negotiate))
        .with_state(registry)
}

/// Content negotiation as Jersey does it for Confluent: the response takes the produced
/// type the request's `Accept` rates highest (then the one Confluent prefers); a request that
/// accepts none of them gets 406. The OpenAPI document is always `application/json`.
async fn negotiate(request: Request, next: axum::middleware::Next) -> Response {
    let chosen = match request.headers().get(header::ACCEPT) {
        _ if request.uri().path() == "/openapi.json" => None,
        None => None,
        Some(accept) => match choose(accept.to_str().unwrap_or("")) {
            Some(chosen) => Some(chosen),
            None => return ApiError::new(406, "HTTP 406 Not Acceptable").into_response(),
        },
    };
    let mut response = next.run(request).await;
    if let Some(chosen) = chosen.filter(|c| *c != CONTENT_TYPE)
        && response.headers().get(header::CONTENT_TYPE)
            == Some(&HeaderValue::from_static(CONTENT_TYPE))
    {
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(chosen));
    }
    response
}

/// The produced type an `Accept` header rates highest, or none when it accepts none. Each
/// produced type takes the quality of the most specific range matching it; ranges that do
/// not parse are skipped, and a header with no range that parses accepts anything.
fn choose(accept: &str) -> Option<&'static str> {
    let mut parsed_any = false;
    let mut best: Option<(f32, f32, &'static str)> = None;
    for (produced, weight) in PRODUCED {
        let (kind, sub) = produced.split_once('/').unwrap_or((produced, ""));
        let mut quality: Option<(u8, f32)> = None;
        for range in accept.split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let Some((range_kind, range_sub)) = media.split_once('/') else {
                continue;
            };
            parsed_any = true;
            let specificity = match (range_kind, range_sub) {
                (k, s) if k == kind && s == sub => 2,
                (k, "*") if k == kind => 1,
                ("*", "*") => 0,
                _ => continue,
            };
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q=").map(str::trim))
                .find_map(|v| v.parse::<f32>().ok())
                .unwrap_or(1.0);
            if quality.is_none_or(|(known, _)| specificity > known) {
                quality = Some((specificity, q));
            }
        }
        if let Some((_, q)) = quality.filter(|(_, q)| *q > 0.0)
            && best.is_none_or(|(bq, bw, _)| (q, weight) > (bq, bw))
        {
            best = Some((q, weight, produced));
        }
    }
    match best {
        Some((_, _, chosen)) => Some(chosen),
        None if !parsed_any => Some(CONTENT_TYPE),
        None => None,
    }
}

async fn root() -> Response {
    json(&serde_json::json!({}))
}

async fn metadata_id(axum::extract::State(registry): axum::extract::State<Shared>) -> Response {
    json(&serde_json::json!({
        "scope": {
            "path": [],
            "clusters": {
                "kafka-cluster": registry.options().kafka_cluster_id,
                "schema-registry-cluster": "schema-registry",
            }
        }
    }))
}

/// `GET /contexts`: the default context `.` and every context holding a subject, sorted.
async fn contexts(
    axum::extract::State(registry): axum::extract::State<Shared>,
    params: Params,
) -> ApiResult {
    Ok(json(&params.page(registry.contexts())?))
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

async fn not_found() -> Response {
    ApiError::new(404, "HTTP 404 Not Found").into_response()
}

async fn method_not_allowed() -> Response {
    ApiError::new(405, "HTTP 405 Method Not Allowed").into_response()
}

/// A Confluent error response.
#[derive(Debug)]
pub(crate) struct ApiError {
    code: u32,
    message: String,
}

impl ApiError {
    pub(crate) fn new(code: u32, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
        }
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> ApiError {
        if e.error_code() >= 50000 {
            tracing::error!(error = %e, "registry store error");
        }
        ApiError::new(e.error_code(), e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(status_of(self.code)).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::json!({"error_code": self.code, "message": self.message});
        let mut response = json(&body);
        *response.status_mut() = status;
        response
    }
}

/// A JSON response with the registry's content type.
pub(crate) fn json<T: serde::Serialize>(value: &T) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_default();
    raw_json(Bytes::from(body))
}

/// Already-encoded JSON with the registry's content type.
pub(crate) fn raw_json(body: Bytes) -> Response {
    let mut response = Body::from(body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    response
}

pub(crate) type ApiResult = Result<Response, ApiError>;

/// Path parameters, percent-decoded; a path that does not decode is a Confluent 404.
pub(crate) struct PathParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for PathParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(PathParams(value)),
            Err(e) => Err(ApiError::new(404, format!("HTTP 404 Not Found: {e}"))),
        }
    }
}

/// Query parameters. Booleans follow Jersey: `true` in any case is true, anything else false.
#[derive(Debug, Default)]
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    pub(crate) fn flag(&self, name: &str) -> bool {
        self.get(name)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    /// Confluent's pagination of a listing: `offset` items skipped (0 by default, a negative
    /// one counts as 0), then at most `limit` (all when absent or negative). A value that is
    /// not an integer is Jersey's 404, as Confluent answers.
    pub(crate) fn page<T>(&self, items: Vec<T>) -> Result<Vec<T>, ApiError> {
        let number = |name: &str| -> Result<Option<i64>, ApiError> {
            match self.get(name) {
                None => Ok(None),
                Some(text) => text
                    .trim()
                    .parse::<i32>()
                    .map(|n| Some(i64::from(n)))
                    .map_err(|_| ApiError::new(404, "HTTP 404 Not Found")),
            }
        };
        let offset = usize::try_from(number("offset")?.unwrap_or(0)).unwrap_or(0);
        let limit = number("limit")?
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(usize::MAX);
        Ok(items.into_iter().skip(offset).take(limit).collect())
    }

    /// The listing filter of `deleted` and `deletedOnly`.
    pub(crate) fn lookup_filter(&self) -> LookupFilter {
        if self.flag("deletedOnly") {
            LookupFilter::DeletedOnly
        } else if self.flag("deleted") {
            LookupFilter::IncludeDeleted
        } else {
            LookupFilter::Default
        }
    }

    /// Every value of a repeated parameter, in order.
    pub(crate) fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        if parts.uri.query().is_none() {
            return Ok(Params::default());
        }
        axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map(|q| Params(q.0))
            .map_err(|e| ApiError::new(400, format!("Invalid query string: {}", e.body_text())))
    }
}

/// A JSON request body: content type checked, size bounded while reading (413 beyond the
/// limit, before the rest is read), parse errors as Confluent bodies.
pub(crate) struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<Shared> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, registry: &Shared) -> Result<Self, ApiError> {
        if let Some(ct) = req.headers().get(header::CONTENT_TYPE) {
            let ct = ct.to_str().unwrap_or("");
            let essence = ct
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            if !ACCEPTED_TYPES.contains(&essence.as_str()) {
                return Err(ApiError::new(415, "HTTP 415 Unsupported Media Type"));
            }
        }
        let limit = registry.options().max_body_bytes;
        let too_large = || ApiError::new(413, format!("Request body is larger than {limit} bytes"));
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(too_large());
        }
        let bytes = match axum::body::to_bytes(req.into_body(), limit).await {
            Ok(bytes) => bytes,
            Err(e) => {
                let inner = e.into_inner();
                if inner.is::<http_body_util::LengthLimitError>() {
                    return Err(too_large());
                }
                return Err(ApiError::new(
                    400,
                    format!("Could not read the request body: {inner}"),
                ));
            }
        };
        match serde_json::from_slice(&bytes) {
            Ok(value) => Ok(JsonBody(value)),
            Err(e) if e.is_data() => Err(ApiError::new(422, format!("Unprocessable entity: {e}"))),
            Err(e) => Err(ApiError::new(400, format!("Unexpected JSON: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::choose;

    #[test]
    fn accept_picks_the_highest_rated_produced_type() {
        assert_eq!(choose("*/*"), Some(super::CONTENT_TYPE));
        assert_eq!(choose("application/json"), Some("application/json"));
        assert_eq!(choose("application/*"), Some(super::CONTENT_TYPE));
        assert_eq!(
            choose("application/json, application/vnd.schemaregistry+json;q=0.9"),
            Some("application/json")
        );
        assert_eq!(
            choose(
                "application/vnd.schemaregistry.v1+json, application/vnd.schemaregistry+json, application/json"
            ),
            Some(super::CONTENT_TYPE)
        );
        assert_eq!(
            choose("application/json;q=0, */*;q=0.1"),
            Some(super::CONTENT_TYPE)
        );
        assert_eq!(choose("application/vnd.schemaregistry.v2+json"), None);
        assert_eq!(choose("text/html"), None);
        assert_eq!(choose("application/json;q=0"), None);
        assert_eq!(choose("garbage"), Some(super::CONTENT_TYPE));
    }
}
