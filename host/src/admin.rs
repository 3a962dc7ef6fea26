//! The management API: `/_wasmount/apps` (list, inspect, upload — `PUT`, the component as
//! the body — and delete apps) and `/_wasmount/instances` (launch an app bound to an input,
//! list, inspect, delete). Every call needs `Authorization: Bearer TOKEN`; reading the app
//! list may be made public by a flag. Bodies are JSON.

use crate::app::{App, LoadError};
use crate::deploy::{DeployError, Deployer};
use crate::instances::{Input, Instance, Instances, LaunchError};
use crate::registry::{Entry, Failure};
use crate::respond::{self, Body};
use crate::router;
use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::SystemTime;
use subtle::ConstantTimeEq as _;

/// Who may call the admin API.
#[derive(Clone)]
pub struct AdminAccess {
    /// SHA-256 of the token; `None` when no token is configured (the API is then closed).
    token_hash: Option<[u8; 32]>,
    /// Whether listing and inspecting apps needs no token.
    public_list: bool,
}

impl AdminAccess {
    /// Access with `token` (none: every call refused) and the list public or not.
    pub fn new(token: Option<&str>, public_list: bool) -> Self {
        Self {
            token_hash: token.map(|token| Sha256::digest(token.as_bytes()).into()),
            public_list,
        }
    }

    /// Checks the bearer token in constant time (both sides are hashed first, so the
    /// comparison does not even depend on the token's length).
    fn check(&self, headers: &HeaderMap, read_only: bool) -> Result<(), Refusal> {
        if read_only && self.public_list {
            return Ok(());
        }
        let Some(expected) = &self.token_hash else {
            return Err(Refusal::new(
                StatusCode::FORBIDDEN,
                "the admin API is disabled: start the server with --admin-token or \
                 --admin-token-file (or WASMOUNT_ADMIN_TOKEN)",
            ));
        };
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(|token| Sha256::digest(token.trim().as_bytes()));
        match given {
            Some(given) if bool::from(given.as_slice().ct_eq(expected)) => Ok(()),
            Some(_) => Err(Refusal::new(StatusCode::UNAUTHORIZED, "wrong admin token")),
            None => Err(Refusal::new(
                StatusCode::UNAUTHORIZED,
                "missing admin token: send `Authorization: Bearer TOKEN`",
            )),
        }
    }
}

/// Settings the admin API needs from the server.
pub struct AdminContext<'a> {
    /// Loads, stores and mounts apps.
    pub deployer: &'a Arc<Deployer>,
    /// Who may call.
    pub access: &'a AdminAccess,
    /// The base path apps are mounted under.
    pub base_path: &'a str,
    /// The largest component accepted, in bytes.
    pub max_upload: u64,
    /// The launched instances.
    pub instances: &'a Arc<Instances>,
    /// The largest input of a launched instance, in bytes.
    pub max_instance_input: u64,
}

/// Handles `/_wasmount/apps…`; `rest` is the path after `/apps`.
pub async fn handle(
    ctx: AdminContext<'_>,
    rest: &str,
    request: Request<Incoming>,
) -> Response<Body> {
    let method = request.method().clone();
    let read_only = method == Method::GET || method == Method::HEAD;
    if let Err(refusal) = ctx.access.check(request.headers(), read_only) {
        return refusal.into_response();
    }
    if rest.is_empty() || rest == "/" {
        return if read_only {
            list(&ctx)
        } else {
            method_not_allowed("GET")
        };
    }
    let Some(name) = rest.strip_prefix('/').filter(|name| !name.contains('/')) else {
        return error(StatusCode::NOT_FOUND, "no such admin endpoint");
    };
    if !router::is_valid_app_name(name) {
        return error(StatusCode::BAD_REQUEST, LoadError::BadName(name.to_owned()));
    }
    match method {
        Method::GET | Method::HEAD => inspect(&ctx, name),
        Method::PUT => upload(&ctx, name, request).await,
        Method::DELETE => remove(&ctx, name).await,
        _ => method_not_allowed("GET, PUT, DELETE"),
    }
}

/// One app as the API shows it.
#[derive(Serialize)]
struct AppInfo {
    name: String,
    route: String,
    /// `serving`, `loading` or `failed`.
    state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<crate::app::Source>,
    #[serde(skip_serializing_if = "Option::is_none")]
    compiled: Option<crate::app::Compiled>,
    #[serde(skip_serializing_if = "Option::is_none")]
    loaded_at: Option<String>,
    /// Versions that went live since the server started.
    deploys: u64,
    /// The last failed load, also while an older version keeps serving.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failed_at: Option<String>,
}

impl AppInfo {
    fn new(
        base_path: &str,
        name: &str,
        entry: Option<&Entry>,
        failure: Option<Failure>,
        deploys: u64,
    ) -> Self {
        let mut info = Self {
            name: name.to_owned(),
            route: format!("{}/", router::mount_prefix(base_path, name)),
            state: "failed",
            sha256: None,
            size: None,
            source: failure.as_ref().map(|f| f.source),
            compiled: None,
            loaded_at: None,
            deploys,
            failed_at: failure.as_ref().map(|f| timestamp(f.at)),
            error: failure.map(|f| f.reason),
        };
        match entry {
            Some(Entry::Ready(app)) => {
                info.state = "serving";
                info.fill_from(app, base_path);
            }
            Some(Entry::Loading(_)) => info.state = "loading",
            None => {}
        }
        info
    }

    fn fill_from(&mut self, app: &App, base_path: &str) {
        self.route = format!("{}/", app.prefix(base_path));
        self.sha256 = Some(app.version().sha256.clone());
        self.size = Some(app.size());
        self.source = Some(app.source());
        self.compiled = Some(app.compiled());
        self.loaded_at = Some(timestamp(app.loaded_at()));
    }
}

fn timestamp(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

fn list(ctx: &AdminContext<'_>) -> Response<Body> {
    let registry = ctx.deployer.registry();
    let mut apps: Vec<AppInfo> = registry
        .list()
        .iter()
        .map(|(name, entry)| {
            AppInfo::new(
                ctx.base_path,
                name,
                Some(entry),
                registry.failure(name),
                registry.deploys(name),
            )
        })
        .collect();
    for (name, failure) in registry.failures() {
        if registry.get(&name).is_none() {
            apps.push(AppInfo::new(
                ctx.base_path,
                &name,
                None,
                Some(failure),
                registry.deploys(&name),
            ));
        }
    }
    apps.sort_by(|a, b| a.name.cmp(&b.name));
    json(StatusCode::OK, &serde_json::json!({ "apps": apps }))
}

fn inspect(ctx: &AdminContext<'_>, name: &str) -> Response<Body> {
    let registry = ctx.deployer.registry();
    let entry = registry.get(name);
    let failure = registry.failure(name);
    if entry.is_none() && failure.is_none() {
        return error(StatusCode::NOT_FOUND, format!("no app named `{name}`"));
    }
    json(
        StatusCode::OK,
        &AppInfo::new(
            ctx.base_path,
            name,
            entry.as_ref(),
            failure,
            registry.deploys(name),
        ),
    )
}

async fn upload(ctx: &AdminContext<'_>, name: &str, request: Request<Incoming>) -> Response<Body> {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let boundary = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.starts_with("multipart/form-data"))
        .map(multer::parse_boundary);
    if ctx.instances.peek(name).is_some() {
        return error(
            StatusCode::CONFLICT,
            format!("`{name}` is the name of a launched instance; delete it first"),
        );
    }
    let limit = BodyLimit {
        bytes: ctx.max_upload,
        what: "upload",
        flag: "--max-upload",
    };
    let body = match read_limited(request.into_body(), declared, limit).await {
        Ok(body) => body,
        Err(refusal) => return refusal.into_response(),
    };
    let (component, manifest) = match boundary {
        None => (body, None),
        Some(Ok(boundary)) => match split_multipart(body, boundary).await {
            Ok(parts) => parts,
            Err(refusal) => return refusal.into_response(),
        },
        Some(Err(problem)) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("bad multipart content type: {problem}"),
            );
        }
    };
    match ctx.deployer.deploy_upload(name, component, manifest).await {
        Ok(deployed) => {
            let deploys = ctx.deployer.registry().deploys(name);
            let mut info = AppInfo::new(ctx.base_path, name, None, None, deploys);
            info.state = "serving";
            info.fill_from(&deployed.app, ctx.base_path);
            let status = if deployed.replaced {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            };
            json(
                status,
                &serde_json::json!({
                    "app": info,
                    "replaced": deployed.replaced,
                    "compile_ms": deployed.app.load_time().as_secs_f64() * 1000.0,
                }),
            )
        }
        Err(DeployError::Load(load)) => {
            tracing::info!(app = name, "upload refused: {load}");
            let status = match load {
                LoadError::RouteTaken { .. } => StatusCode::CONFLICT,
                LoadError::CoreModule | LoadError::Incompatible(_) | LoadError::Manifest(_) => {
                    StatusCode::UNPROCESSABLE_ENTITY
                }
                _ => StatusCode::BAD_REQUEST,
            };
            error(status, load)
        }
        Err(DeployError::Store(store)) => {
            tracing::error!(app = name, "upload could not be stored: {store:#}");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the app could not be stored; see the server log",
            )
        }
    }
}

/// The parts of a `multipart/form-data` upload: `component` (required) and `manifest`
/// (optional, the `NAME.toml` text), so a component and its settings go live together.
async fn split_multipart(
    body: Bytes,
    boundary: String,
) -> Result<(Bytes, Option<String>), Refusal> {
    let bad = |message: String| Refusal::new(StatusCode::BAD_REQUEST, message);
    let stream = futures::stream::once(async move { Ok::<_, std::io::Error>(body) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let (mut component, mut manifest) = (None, None);
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| bad(format!("bad multipart body: {e}")))?
    {
        match field.name() {
            Some("component") => {
                component = Some(
                    field
                        .bytes()
                        .await
                        .map_err(|e| bad(format!("reading `component`: {e}")))?,
                );
            }
            Some("manifest") => {
                manifest = Some(
                    field
                        .text()
                        .await
                        .map_err(|e| bad(format!("reading `manifest`: {e}")))?,
                );
            }
            other => {
                return Err(bad(format!(
                    "unexpected part `{}`: send `component` and optionally `manifest`",
                    other.unwrap_or("")
                )));
            }
        }
    }
    let component =
        component.ok_or_else(|| bad("the multipart body has no `component` part".into()))?;
    Ok((component, manifest))
}

/// How much of an oversized upload is read and thrown away before answering 413, at least.
const MIN_DRAIN_BYTES: u64 = 1 << 20;
/// How long that may take.
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(2);

/// Reads and discards up to `budget` more bytes of a refused body (within [`DRAIN_TIME`]), so
/// a client still sending gets to read the refusal: closing a connection with unread data
/// resets it, and the client loses the answer.
async fn drain(mut body: Incoming, budget: u64) {
    let mut left = budget;
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        while let Some(Ok(frame)) = body.frame().await {
            let len = frame.data_ref().map_or(0, |d| d.len() as u64);
            match left.checked_sub(len) {
                Some(rest) => left = rest,
                None => break,
            }
        }
    })
    .await;
}

/// The most a request body may hold, and how to tell the client so.
#[derive(Clone, Copy)]
struct BodyLimit {
    bytes: u64,
    /// What the body is, for the message (`upload`).
    what: &'static str,
    /// The flag that sets the limit.
    flag: &'static str,
}

/// Reads a request body of at most `limit` bytes, refusing as soon as it is known to be
/// larger: from `content-length` before reading, or while streaming.
async fn read_limited(
    mut body: Incoming,
    declared: Option<u64>,
    limit: BodyLimit,
) -> Result<Bytes, Refusal> {
    let BodyLimit {
        bytes: limit,
        what,
        flag,
    } = limit;
    let too_large = |size: String| {
        Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "{what} is {size}, limit is {} ({flag})",
                bytesize::ByteSize(limit)
            ),
        )
    };
    if let Some(declared) = declared
        && declared > limit
    {
        return Err(too_large(bytesize::ByteSize(declared).to_string()));
    }
    let mut buffer = BytesMut::with_capacity(declared.unwrap_or(0).min(limit) as usize);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            Refusal::new(StatusCode::BAD_REQUEST, format!("reading the upload: {e}"))
        })?;
        if let Ok(data) = frame.into_data() {
            if (buffer.len() + data.len()) as u64 > limit {
                drain(body, limit.max(MIN_DRAIN_BYTES)).await;
                return Err(too_large(format!(
                    "more than {}",
                    bytesize::ByteSize(limit)
                )));
            }
            buffer.extend_from_slice(&data);
        }
    }
    Ok(buffer.freeze())
}

async fn remove(ctx: &AdminContext<'_>, name: &str) -> Response<Body> {
    match ctx.deployer.remove(name).await {
        Ok(true) => no_content(),
        Ok(false) => error(StatusCode::NOT_FOUND, format!("no app named `{name}`")),
        Err(failure) => {
            tracing::error!(app = name, "removing failed: {failure:#}");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the app could not be removed; see the server log",
            )
        }
    }
}

/// Handles `/_wasmount/instances…`; `rest` is the path after `/instances`.
pub async fn handle_instances(
    ctx: AdminContext<'_>,
    rest: &str,
    request: Request<Incoming>,
) -> Response<Body> {
    let method = request.method().clone();
    // Instances carry their users' inputs: even reading them needs the token.
    if let Err(refusal) = ctx.access.check(request.headers(), false) {
        return refusal.into_response();
    }
    let origin = public_origin(request.headers());
    if rest.is_empty() || rest == "/" {
        return match method {
            Method::GET | Method::HEAD => {
                let instances = ctx.instances.list();
                let all: Vec<_> = instances
                    .iter()
                    .map(|instance| InstanceInfo::new(&ctx, &origin, instance, false))
                    .collect();
                json(StatusCode::OK, &serde_json::json!({ "instances": all }))
            }
            Method::POST => launch(&ctx, &origin, request).await,
            _ => method_not_allowed("GET, POST"),
        };
    }
    let Some(name) = rest.strip_prefix('/').filter(|name| !name.contains('/')) else {
        return error(StatusCode::NOT_FOUND, "no such admin endpoint");
    };
    let Some(instance) = ctx.instances.peek(name) else {
        return error(StatusCode::NOT_FOUND, format!("no instance named `{name}`"));
    };
    match method {
        Method::GET | Method::HEAD => json(
            StatusCode::OK,
            &InstanceInfo::new(&ctx, &origin, &instance, true),
        ),
        Method::DELETE => match ctx.instances.remove(name).await {
            Ok(_) => no_content(),
            Err(failure) => {
                tracing::error!(instance = name, "deleting failed: {failure:#}");
                error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the instance could not be deleted; see the server log",
                )
            }
        },
        _ => method_not_allowed("GET, DELETE"),
    }
}

/// The body of `POST /_wasmount/instances`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LaunchRequest<'a> {
    app: String,
    #[serde(borrow, default)]
    input: Option<&'a RawValue>,
    #[serde(default)]
    input_url: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

/// Room for the request's other fields around the input.
const LAUNCH_ENVELOPE_BYTES: u64 = 16 << 10;

async fn launch(
    ctx: &AdminContext<'_>,
    origin: &str,
    request: Request<Incoming>,
) -> Response<Body> {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let input_limit = ctx.max_instance_input;
    let limit = BodyLimit {
        bytes: input_limit + LAUNCH_ENVELOPE_BYTES,
        what: "the launch request",
        flag: "--max-instance-input",
    };
    let body = match read_limited(request.into_body(), declared, limit).await {
        Ok(body) => body,
        Err(refusal) => return refusal.into_response(),
    };
    let launch: LaunchRequest<'_> = match serde_json::from_slice(&body) {
        Ok(launch) => launch,
        Err(problem) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "the body must be JSON like {{\"app\": \"NAME\", \"input\": {{…}}}}: {problem}"
                ),
            );
        }
    };
    let input = match (launch.input, launch.input_url) {
        (Some(input), None) if input.get().len() as u64 > input_limit => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "the input is {}, limit is {} (--max-instance-input)",
                    bytesize::ByteSize(input.get().len() as u64),
                    bytesize::ByteSize(input_limit)
                ),
            );
        }
        (Some(input), None) => Input::Json(input.get().into()),
        (None, Some(url)) => match url.parse::<http::Uri>() {
            Ok(uri) if matches!(uri.scheme_str(), Some("http" | "https")) => Input::Url(url.into()),
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("`input_url` `{url}` is not an http(s) URL"),
                );
            }
        },
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "give exactly one of `input` (the JSON the app gets as INPUT_JSON) and \
                 `input_url` (an address it gets as INPUT_JSON_URL)",
            );
        }
    };
    let app = launch.app;
    if !router::is_valid_app_name(&app) || ctx.deployer.registry().get(&app).is_none() {
        return error(
            StatusCode::NOT_FOUND,
            format!("no app named `{app}` is mounted"),
        );
    }
    if let Some(name) = &launch.name
        && ctx.deployer.registry().get(name).is_some()
    {
        return error(
            StatusCode::CONFLICT,
            format!("`{name}` is the name of an app; choose another instance name"),
        );
    }
    match ctx
        .instances
        .launch(&app, input, launch.name.as_deref())
        .await
    {
        Ok(instance) => {
            tracing::info!(instance = %instance.name, app = %app, "launched");
            let info = InstanceInfo::new(ctx, origin, &instance, false);
            json(StatusCode::CREATED, &info)
        }
        Err(refusal) => {
            let status = match &refusal {
                LaunchError::NameTaken(_) => StatusCode::CONFLICT,
                LaunchError::BadName(_) => StatusCode::BAD_REQUEST,
                LaunchError::Full(_) => StatusCode::TOO_MANY_REQUESTS,
                LaunchError::Store(failure) => {
                    tracing::error!(app = %app, "launch could not be stored: {failure:#}");
                    StatusCode::INTERNAL_SERVER_ERROR
                }
            };
            error(status, refusal)
        }
    }
}

/// One launched instance as the API shows it.
#[derive(Serialize)]
struct InstanceInfo<'a> {
    name: &'a str,
    /// Where to open it: absolute when the request said which host it was sent to.
    url: String,
    app: &'a str,
    created: String,
    last_used: String,
    input_bytes: usize,
    /// Only when one instance is inspected.
    #[serde(skip_serializing_if = "Option::is_none")]
    input: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    input_url: Option<&'a str>,
}

impl<'a> InstanceInfo<'a> {
    fn new(ctx: &AdminContext<'_>, origin: &str, instance: &'a Instance, with_input: bool) -> Self {
        let (input, input_url) = match &instance.input {
            Input::Json(json) if with_input => (serde_json::from_str(json).ok(), None),
            Input::Url(url) if with_input => (None, Some(url.as_ref())),
            _ => (None, None),
        };
        Self {
            name: &instance.name,
            url: format!(
                "{origin}{}/",
                router::mount_prefix(ctx.base_path, &instance.name)
            ),
            app: &instance.app,
            created: timestamp(instance.created),
            last_used: timestamp(instance.last_used()),
            input_bytes: instance.input.len(),
            input,
            input_url,
        }
    }
}

/// `scheme://host` the client reached the server at (from `x-forwarded-proto`/`-host` when a
/// proxy set them, else `host`), or `""` (URLs are then paths) when it did not say.
fn public_origin(headers: &HeaderMap) -> String {
    let value = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let host = value("x-forwarded-host").or_else(|| value(header::HOST.as_str()));
    let proto = value("x-forwarded-proto").unwrap_or("http");
    let valid = |host: &str| {
        host.chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-:[]_".contains(c))
    };
    match host {
        Some(host) if valid(host) && matches!(proto, "http" | "https") => {
            format!("{proto}://{host}")
        }
        _ => String::new(),
    }
}

fn no_content() -> Response<Body> {
    let mut response = Response::new(respond::full(Bytes::new()));
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}

fn json(status: StatusCode, value: &impl Serialize) -> Response<Body> {
    let document =
        serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    respond::json(status, document + "\n")
}

/// A JSON error body `{"error": message}`.
pub fn error(status: StatusCode, message: impl std::fmt::Display) -> Response<Body> {
    json(status, &serde_json::json!({ "error": message.to_string() }))
}

/// A refusal before any work is done: a status and a message for the client.
struct Refusal {
    status: StatusCode,
    message: String,
}

impl Refusal {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    fn into_response(self) -> Response<Body> {
        let mut response = error(self.status, self.message);
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

fn method_not_allowed(allow: &'static str) -> Response<Body> {
    let mut response = error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}
