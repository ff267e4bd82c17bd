//! An in-process stand-in for the schema registry, speaking just enough of the Confluent REST
//! API for the serde unit tests: register, lookup, schema by id, subject versions.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

#[derive(Default)]
pub(crate) struct Registry {
    pub(crate) schemas: Vec<String>,
    pub(crate) subjects: HashMap<String, Vec<u32>>,
    pub(crate) requests: usize,
    pub(crate) basic_auth: Option<String>,
}

pub(crate) type Shared = Arc<Mutex<Registry>>;

pub(crate) struct TestRegistry {
    pub(crate) url: String,
    pub(crate) state: Shared,
}

impl TestRegistry {
    pub(crate) async fn start() -> TestRegistry {
        Self::start_with_auth(None).await
    }

    /// Serves over TLS with the test certificate for `localhost` (see `testdata/`).
    pub(crate) async fn start_tls() -> TestRegistry {
        use tokio_rustls::rustls::pki_types::pem::PemObject;
        use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
        use tokio_rustls::rustls::{ServerConfig, crypto::ring::default_provider};

        let cert =
            CertificateDer::from_pem_slice(include_bytes!("testdata/localhost.pem")).unwrap();
        let key = PrivateKeyDer::from_pem_slice(include_bytes!("testdata/localhost.key")).unwrap();
        let config = ServerConfig::builder_with_provider(Arc::new(default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap();
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = tcp.local_addr().unwrap().port();
        let listener = TlsListener {
            tcp,
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        };
        let state: Shared = Arc::new(Mutex::new(Registry::default()));
        let app = router(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        TestRegistry {
            url: format!("https://localhost:{port}"),
            state,
        }
    }

    /// `auth` is the expected `Authorization` header value.
    pub(crate) async fn start_with_auth(auth: Option<String>) -> TestRegistry {
        let state: Shared = Arc::new(Mutex::new(Registry {
            basic_auth: auth,
            ..Registry::default()
        }));
        let app = router(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        TestRegistry {
            url: format!("http://{addr}"),
            state,
        }
    }

    pub(crate) fn requests(&self) -> usize {
        self.state.lock().unwrap().requests
    }

    pub(crate) fn register(&self, subject: &str, schema: &str) -> u32 {
        register_in(&mut self.state.lock().unwrap(), subject, schema)
    }
}

fn router(state: Shared) -> Router {
    Router::new()
        .route("/subjects", get(subjects))
        .route("/subjects/{subject}", post(lookup))
        .route("/subjects/{subject}/versions", post(register))
        .route("/subjects/{subject}/versions/{version}", get(version))
        .route("/schemas/ids/{id}", get(by_id))
        .with_state(state)
}

/// Accepts TCP connections and completes the TLS handshake before handing them to axum.
struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((stream, addr)) = self.tcp.accept().await else {
                continue;
            };
            if let Ok(tls) = self.acceptor.accept(stream).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

fn register_in(reg: &mut Registry, subject: &str, schema: &str) -> u32 {
    let id = match reg.schemas.iter().position(|s| s == schema) {
        Some(i) => i as u32 + 1,
        None => {
            reg.schemas.push(schema.to_string());
            reg.schemas.len() as u32
        }
    };
    let versions = reg.subjects.entry(subject.to_string()).or_default();
    if !versions.contains(&id) {
        versions.push(id);
    }
    id
}

fn error(status: StatusCode, code: i32, message: &str) -> Response {
    (
        status,
        Json(json!({"error_code": code, "message": message})),
    )
        .into_response()
}

fn check(state: &Shared, headers: &HeaderMap) -> Result<(), Box<Response>> {
    let mut reg = state.lock().unwrap();
    reg.requests += 1;
    if let Some(expected) = &reg.basic_auth {
        let got = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if got != expected {
            return Err(Box::new(error(
                StatusCode::UNAUTHORIZED,
                401,
                "Unauthorized",
            )));
        }
    }
    Ok(())
}

async fn subjects(State(state): State<Shared>, headers: HeaderMap) -> Response {
    if let Err(r) = check(&state, &headers) {
        return *r;
    }
    let reg = state.lock().unwrap();
    let mut names: Vec<&String> = reg.subjects.keys().collect();
    names.sort();
    Json(json!(names)).into_response()
}

async fn register(
    State(state): State<Shared>,
    Path(subject): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Err(r) = check(&state, &headers) {
        return *r;
    }
    let Some(schema) = body["schema"].as_str() else {
        return error(StatusCode::UNPROCESSABLE_ENTITY, 42201, "Invalid schema");
    };
    if apache_avro::Schema::parse_str(schema).is_err() {
        return error(StatusCode::UNPROCESSABLE_ENTITY, 42201, "Invalid schema");
    }
    let id = register_in(&mut state.lock().unwrap(), &subject, schema);
    Json(json!({"id": id})).into_response()
}

async fn lookup(
    State(state): State<Shared>,
    Path(subject): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Err(r) = check(&state, &headers) {
        return *r;
    }
    let reg = state.lock().unwrap();
    let schema = body["schema"].as_str().unwrap_or_default();
    let Some(versions) = reg.subjects.get(&subject) else {
        return error(StatusCode::NOT_FOUND, 40401, "Subject not found");
    };
    for (i, id) in versions.iter().enumerate() {
        if reg.schemas[*id as usize - 1] == schema {
            return Json(json!({"subject": subject, "id": id, "version": i + 1, "schema": schema}))
                .into_response();
        }
    }
    error(StatusCode::NOT_FOUND, 40403, "Schema not found")
}

async fn version(
    State(state): State<Shared>,
    Path((subject, version)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = check(&state, &headers) {
        return *r;
    }
    let reg = state.lock().unwrap();
    let Some(versions) = reg.subjects.get(&subject) else {
        return error(StatusCode::NOT_FOUND, 40401, "Subject not found");
    };
    let index = if version == "latest" {
        versions.len()
    } else {
        version.parse().unwrap_or(0)
    };
    let Some(id) = index.checked_sub(1).and_then(|i| versions.get(i)) else {
        return error(StatusCode::NOT_FOUND, 40402, "Version not found");
    };
    let schema = &reg.schemas[*id as usize - 1];
    Json(json!({"subject": subject, "id": id, "version": index, "schema": schema})).into_response()
}

async fn by_id(State(state): State<Shared>, Path(id): Path<u32>, headers: HeaderMap) -> Response {
    if let Err(r) = check(&state, &headers) {
        return *r;
    }
    let reg = state.lock().unwrap();
    match id.checked_sub(1).and_then(|i| reg.schemas.get(i as usize)) {
        Some(schema) => Json(json!({"schema": schema})).into_response(),
        None => error(StatusCode::NOT_FOUND, 40403, "Schema not found"),
    }
}
