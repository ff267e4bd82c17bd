//! A client for the Confluent Schema Registry REST API (which `strand serve` speaks).
//!
//! A *subject* names a sequence of schema *versions*; every distinct schema gets a global
//! *schema id*, which framed records carry. The client caches what never changes — the schema
//! behind an id, and the id a subject gave a schema — so a running producer or consumer asks
//! the registry once per schema, not once per record.

use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{ClientError, Result};

const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// How to reach the schema registry.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// Base URL, e.g. `http://127.0.0.1:8081`.
    pub url: String,
    /// User name and password for HTTP basic authentication.
    pub basic_auth: Option<(String, String)>,
    /// Extra PEM-encoded CA certificates to trust for `https` URLs (rustls).
    pub ca_certificates_pem: Vec<Vec<u8>>,
    /// Timeout of each HTTP request.
    pub request_timeout: Duration,
}

impl RegistryConfig {
    /// A configuration for the registry at `url`, without authentication.
    pub fn new(url: impl Into<String>) -> Self {
        RegistryConfig {
            url: url.into(),
            basic_auth: None,
            ca_certificates_pem: Vec::new(),
            request_timeout: Duration::from_secs(30),
        }
    }

    /// Authenticates with HTTP basic auth.
    pub fn with_basic_auth(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.basic_auth = Some((user.into(), password.into()));
        self
    }

    /// Trusts an extra CA certificate (PEM) when the URL is `https`.
    pub fn with_ca_certificate_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_certificates_pem.push(pem.into());
        self
    }
}

/// A schema as registered under a subject.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RegisteredSchema {
    /// The subject.
    pub subject: String,
    /// The global schema id.
    pub id: u32,
    /// The version within the subject.
    pub version: i32,
    /// The schema text.
    pub schema: String,
    /// The `schemaType` (absent for Avro).
    #[serde(rename = "schemaType", default)]
    pub schema_type: Option<String>,
    /// The schemas it references.
    #[serde(default)]
    pub references: Vec<SchemaReference>,
}

/// A reference from one schema to a subject version, under the name the referencing schema
/// uses for it (a Protobuf import path, an Avro full name, a JSON Schema URI).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SchemaReference {
    /// The name the referencing schema uses.
    pub name: String,
    /// The referenced subject.
    pub subject: String,
    /// The referenced version.
    pub version: i32,
}

/// A schema as `GET /schemas/ids/{id}` returns it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SchemaById {
    /// The schema text.
    pub schema: String,
    /// The `schemaType` (absent for Avro).
    #[serde(rename = "schemaType", default)]
    pub schema_type: Option<String>,
    /// The schemas it references.
    #[serde(default)]
    pub references: Vec<SchemaReference>,
}

/// The registry's verdict on a candidate schema for a subject.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Compatibility {
    /// Whether it may be registered.
    pub is_compatible: bool,
    /// Why not, when it may not (empty when compatible).
    #[serde(default)]
    pub messages: Vec<String>,
}

/// A cheap-to-clone handle on the schema registry, with caches shared by all clones.
#[derive(Clone)]
pub struct RegistryClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base: Url,
    basic_auth: Option<(String, String)>,
    schemas_by_id: DashMap<u32, Arc<str>>,
    /// The `schemaType` of ids fetched by id (absent for Avro).
    types_by_id: DashMap<u32, Option<Arc<str>>>,
    ids_by_subject_schema: DashMap<(String, String), u32>,
}

#[derive(Serialize)]
struct SchemaBody<'a> {
    schema: &'a str,
    #[serde(rename = "schemaType", skip_serializing_if = "Option::is_none")]
    schema_type: Option<&'a str>,
    #[serde(skip_serializing_if = "<[SchemaReference]>::is_empty")]
    references: &'a [SchemaReference],
}

#[derive(Deserialize)]
struct IdBody {
    id: u32,
}

#[derive(Deserialize)]
struct SchemaText {
    schema: String,
    #[serde(rename = "schemaType", default)]
    schema_type: Option<String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error_code: i32,
    message: String,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("url", &self.inner.base.as_str())
            .finish()
    }
}

impl RegistryClient {
    /// Builds a client; no request is made until one is needed.
    pub fn new(config: RegistryConfig) -> Result<Self> {
        let base = Url::parse(&config.url)
            .map_err(|e| ClientError::Config(format!("registry url {:?}: {e}", config.url)))?;
        if base.cannot_be_a_base() {
            return Err(ClientError::Config(format!(
                "registry url {:?} is not a base URL",
                config.url
            )));
        }
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(config.request_timeout);
        for pem in &config.ca_certificates_pem {
            let cert = reqwest::Certificate::from_pem(pem)
                .map_err(|e| ClientError::Config(format!("registry CA certificate: {e}")))?;
            builder = builder.add_root_certificate(cert);
        }
        let http = builder
            .build()
            .map_err(|e| ClientError::Config(format!("registry HTTP client: {e}")))?;
        Ok(RegistryClient {
            inner: Arc::new(Inner {
                http,
                base,
                basic_auth: config.basic_auth,
                schemas_by_id: DashMap::new(),
                types_by_id: DashMap::new(),
                ids_by_subject_schema: DashMap::new(),
            }),
        })
    }

    /// Registers `schema` under `subject` (or finds it if already there) and returns its id.
    pub async fn register(&self, subject: &str, schema: &str) -> Result<u32> {
        self.register_typed(subject, schema, None).await
    }

    /// Registers `schema` of a `schemaType` (`"JSON"`; `None` is Avro) under `subject`, or
    /// finds it if already there, and returns its id.
    pub async fn register_typed(
        &self,
        subject: &str,
        schema: &str,
        schema_type: Option<&str>,
    ) -> Result<u32> {
        let key = match schema_type {
            None => (subject.to_string(), schema.to_string()),
            Some(t) => (subject.to_string(), format!("{t}\0{schema}")),
        };
        if let Some(id) = self.inner.ids_by_subject_schema.get(&key) {
            return Ok(*id);
        }
        let body = SchemaBody {
            schema,
            schema_type,
            references: &[],
        };
        let IdBody { id } = self
            .call(
                Method::POST,
                &["subjects", subject, "versions"],
                Some(&body),
            )
            .await?;
        self.inner.ids_by_subject_schema.insert(key, id);
        self.inner.schemas_by_id.insert(id, Arc::from(schema));
        self.inner
            .types_by_id
            .insert(id, schema_type.map(Arc::from));
        Ok(id)
    }

    /// Registers `schema` of a `schemaType` with its `references` under `subject`, or finds
    /// it if already there, and returns its id (not cached: the references are part of it).
    pub async fn register_with_references(
        &self,
        subject: &str,
        schema: &str,
        schema_type: Option<&str>,
        references: &[SchemaReference],
    ) -> Result<u32> {
        let body = SchemaBody {
            schema,
            schema_type,
            references,
        };
        let IdBody { id } = self
            .call(
                Method::POST,
                &["subjects", subject, "versions"],
                Some(&body),
            )
            .await?;
        Ok(id)
    }

    /// Looks up `schema` of a `schemaType` with its `references` under `subject` without
    /// registering it (not cached).
    pub async fn lookup_with_references(
        &self,
        subject: &str,
        schema: &str,
        schema_type: Option<&str>,
        references: &[SchemaReference],
    ) -> Result<RegisteredSchema> {
        let body = SchemaBody {
            schema,
            schema_type,
            references,
        };
        self.call(Method::POST, &["subjects", subject], Some(&body))
            .await
    }

    /// The schema registered with `id`, with its type and references (not cached).
    pub async fn schema_by_id_full(&self, id: u32) -> Result<SchemaById> {
        self.call::<_, ()>(Method::GET, &["schemas", "ids", &id.to_string()], None)
            .await
            .map_err(|e| match e {
                ClientError::Registry { status: 404, .. } => ClientError::UnknownSchemaId(id),
                other => other,
            })
    }

    /// Looks up `schema` under `subject` without registering it.
    pub async fn lookup(&self, subject: &str, schema: &str) -> Result<RegisteredSchema> {
        self.lookup_typed(subject, schema, None).await
    }

    /// Looks up `schema` of a `schemaType` (`None` is Avro) under `subject` without
    /// registering it.
    pub async fn lookup_typed(
        &self,
        subject: &str,
        schema: &str,
        schema_type: Option<&str>,
    ) -> Result<RegisteredSchema> {
        let body = SchemaBody {
            schema,
            schema_type,
            references: &[],
        };
        let found: RegisteredSchema = self
            .call(Method::POST, &["subjects", subject], Some(&body))
            .await?;
        let key = match schema_type {
            None => schema.to_string(),
            Some(t) => format!("{t}\0{schema}"),
        };
        self.inner
            .ids_by_subject_schema
            .insert((subject.to_string(), key), found.id);
        Ok(found)
    }

    /// The schema text registered with `id`.
    pub async fn schema_by_id(&self, id: u32) -> Result<Arc<str>> {
        if let Some(schema) = self.inner.schemas_by_id.get(&id) {
            return Ok(schema.clone());
        }
        Ok(self.fetch_by_id(id).await?.0)
    }

    /// The schema text registered with `id` and its `schemaType` (`None` for Avro).
    pub async fn schema_with_type_by_id(&self, id: u32) -> Result<(Arc<str>, Option<Arc<str>>)> {
        if let (Some(schema), Some(schema_type)) = (
            self.inner.schemas_by_id.get(&id),
            self.inner.types_by_id.get(&id),
        ) {
            return Ok((schema.clone(), schema_type.clone()));
        }
        self.fetch_by_id(id).await
    }

    async fn fetch_by_id(&self, id: u32) -> Result<(Arc<str>, Option<Arc<str>>)> {
        let text: SchemaText = self
            .call::<_, ()>(Method::GET, &["schemas", "ids", &id.to_string()], None)
            .await
            .map_err(|e| match e {
                ClientError::Registry { status: 404, .. } => ClientError::UnknownSchemaId(id),
                other => other,
            })?;
        let schema: Arc<str> = Arc::from(text.schema);
        let schema_type: Option<Arc<str>> = text.schema_type.map(Arc::from);
        self.inner.schemas_by_id.insert(id, schema.clone());
        self.inner.types_by_id.insert(id, schema_type.clone());
        Ok((schema, schema_type))
    }

    /// The latest version registered under `subject`.
    pub async fn latest_version(&self, subject: &str) -> Result<RegisteredSchema> {
        self.version(subject, "latest").await
    }

    /// A given version (`"1"`, `"2"`, … or `"latest"`) of `subject`.
    pub async fn version(&self, subject: &str, version: &str) -> Result<RegisteredSchema> {
        let found: RegisteredSchema = self
            .call::<_, ()>(
                Method::GET,
                &["subjects", subject, "versions", version],
                None,
            )
            .await
            .map_err(|e| unknown_subject(e, subject))?;
        self.inner
            .schemas_by_id
            .entry(found.id)
            .or_insert_with(|| Arc::from(found.schema.as_str()));
        Ok(found)
    }

    /// All subjects the registry knows.
    pub async fn subjects(&self) -> Result<Vec<String>> {
        self.call::<_, ()>(Method::GET, &["subjects"], None).await
    }

    /// The versions registered under `subject`, ascending.
    pub async fn versions(&self, subject: &str) -> Result<Vec<i32>> {
        self.call::<_, ()>(Method::GET, &["subjects", subject, "versions"], None)
            .await
            .map_err(|e| unknown_subject(e, subject))
    }

    /// Whether `schema` could be registered under `subject` given its compatibility level,
    /// checked against the versions that level names, without registering anything.
    pub async fn check_compatibility(&self, subject: &str, schema: &str) -> Result<Compatibility> {
        let body = SchemaBody {
            schema,
            schema_type: None,
            references: &[],
        };
        let result: Result<Compatibility> = self
            .call_with_query(
                Method::POST,
                &["compatibility", "subjects", subject, "versions"],
                &[("verbose", "true")],
                Some(&body),
            )
            .await;
        result.map_err(|e| unknown_subject(e, subject))
    }

    /// Soft-deletes every version of `subject` and returns the deleted version numbers.
    pub async fn delete_subject(&self, subject: &str) -> Result<Vec<i32>> {
        self.call::<_, ()>(Method::DELETE, &["subjects", subject], None)
            .await
            .map_err(|e| unknown_subject(e, subject))
    }

    async fn call<T: DeserializeOwned, B: Serialize>(
        &self,
        method: Method,
        path: &[&str],
        body: Option<&B>,
    ) -> Result<T> {
        self.call_with_query(method, path, &[], body).await
    }

    async fn call_with_query<T: DeserializeOwned, B: Serialize>(
        &self,
        method: Method,
        path: &[&str],
        query: &[(&str, &str)],
        body: Option<&B>,
    ) -> Result<T> {
        let mut url = self.inner.base.clone();
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        {
            let Ok(mut segments) = url.path_segments_mut() else {
                return Err(ClientError::Config(format!(
                    "registry url {} is not a base URL",
                    self.inner.base
                )));
            };
            segments.pop_if_empty();
            segments.extend(path);
        }
        let mut request = self
            .inner
            .http
            .request(method, url.clone())
            .header(reqwest::header::ACCEPT, CONTENT_TYPE);
        if let Some((user, password)) = &self.inner.basic_auth {
            request = request.basic_auth(user, Some(password));
        }
        if let Some(body) = body {
            let json = serde_json::to_vec(body)
                .map_err(|e| ClientError::Protocol(format!("encoding registry request: {e}")))?;
            request = request
                .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
                .body(json);
        }
        let unreachable = |e: reqwest::Error| ClientError::RegistryUnreachable {
            url: url.to_string(),
            message: error_chain(&e),
        };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(unreachable)?;
        if status.is_success() {
            return serde_json::from_slice(&bytes)
                .map_err(|e| ClientError::Protocol(format!("registry response from {url}: {e}")));
        }
        Err(match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(err) => ClientError::Registry {
                status: status.as_u16(),
                code: err.error_code,
                message: err.message,
            },
            Err(_) => ClientError::Registry {
                status: status.as_u16(),
                code: i32::from(status.as_u16()),
                message: http_message(status, &bytes),
            },
        })
    }
}

/// Confluent's "subject not found" (40401) as the typed error.
fn unknown_subject(err: ClientError, subject: &str) -> ClientError {
    match err {
        ClientError::Registry { code: 40401, .. } => {
            ClientError::UnknownSubject(subject.to_string())
        }
        other => other,
    }
}

fn http_message(status: StatusCode, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        status.to_string()
    } else {
        text.chars().take(200).collect()
    }
}

/// reqwest's top-level message hides the cause ("error sending request"); callers need it.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_registry::TestRegistry;

    #[tokio::test]
    async fn basic_auth_credentials_are_sent() {
        // "user:secret" in base64.
        let registry = TestRegistry::start_with_auth(Some("Basic dXNlcjpzZWNyZXQ=".into())).await;
        let anonymous = RegistryClient::new(RegistryConfig::new(&registry.url)).unwrap();
        let err = anonymous.subjects().await.unwrap_err();
        assert!(
            matches!(err, ClientError::Registry { status: 401, .. }),
            "{err}"
        );
        let authed = RegistryClient::new(
            RegistryConfig::new(&registry.url).with_basic_auth("user", "secret"),
        )
        .unwrap();
        authed.register("s", r#""string""#).await.unwrap();
        assert_eq!(authed.subjects().await.unwrap(), vec!["s".to_string()]);
    }

    #[tokio::test]
    async fn registry_errors_keep_confluent_codes() {
        let registry = TestRegistry::start().await;
        let client = RegistryClient::new(RegistryConfig::new(&registry.url)).unwrap();
        let err = client.register("s", "{not json").await.unwrap_err();
        assert!(
            matches!(
                err,
                ClientError::Registry {
                    status: 422,
                    code: 42201,
                    ..
                }
            ),
            "{err}"
        );
        let err = client.latest_version("missing").await.unwrap_err();
        assert!(matches!(err, ClientError::UnknownSubject(_)), "{err}");
        let id = client.register("s", r#""long""#).await.unwrap();
        let found = client.lookup("s", r#""long""#).await.unwrap();
        assert_eq!((found.id, found.version), (id, 1));
    }

    #[tokio::test]
    async fn https_registry_is_reached_when_its_ca_is_trusted() {
        let registry = TestRegistry::start_tls().await;
        let untrusted = RegistryClient::new(RegistryConfig::new(&registry.url)).unwrap();
        let err = untrusted.subjects().await.unwrap_err();
        assert!(
            matches!(err, ClientError::RegistryUnreachable { .. }),
            "{err}"
        );
        let trusted = RegistryClient::new(
            RegistryConfig::new(&registry.url)
                .with_ca_certificate_pem(include_bytes!("testdata/test-ca.pem").to_vec()),
        )
        .unwrap();
        let id = trusted.register("secure", r#""string""#).await.unwrap();
        assert_eq!(&*trusted.schema_by_id(id).await.unwrap(), r#""string""#);
    }

    #[tokio::test]
    async fn unreachable_registry_is_a_typed_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let client = RegistryClient::new(RegistryConfig::new(format!("http://{addr}"))).unwrap();
        let err = client.schema_by_id(1).await.unwrap_err();
        assert!(
            matches!(err, ClientError::RegistryUnreachable { .. }),
            "{err}"
        );
    }

    #[test]
    fn malformed_url_is_a_config_error() {
        assert!(matches!(
            RegistryClient::new(RegistryConfig::new("not a url")),
            Err(ClientError::Config(_))
        ));
    }
}
