//! `/_wasmount/instances`: launch an app bound to an input at a URL of its own, list,
//! inspect and delete launches.

use crate::apps::names::{RESERVED_PREFIX, is_valid_app_name, mount_prefix};
use crate::apps::registry::Entry;
use crate::config::Access;
use crate::http::admin::body::{BodyLimit, read_limited};
use crate::http::admin::tokens::Scope;
use crate::http::admin::{ApiError, ApiResult, json, no_content, respond, timestamp};
use crate::http::server::Server;
use crate::http::signed_links::{LINK_PARAM, LINK_TTL, LinkKeys, LinkSubject};
use crate::launches::{Gate, Input, Launch, LaunchError, MAX_LABEL_LEN};
use crate::respond::Body;
use crate::runtime::client_body::ClientBody;
use http::{HeaderMap, Method, Request, Response, StatusCode, header};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::time::SystemTime;

/// Handles `/_wasmount/instances…`; `rest` is the path after `/instances`.
pub(crate) async fn handle(
    server: &Server,
    rest: &str,
    request: Request<ClientBody>,
) -> Response<Body> {
    respond(route(server, rest, request).await)
}

async fn route(server: &Server, rest: &str, request: Request<ClientBody>) -> ApiResult {
    // Launches carry their users' inputs: even reading them needs a token.
    let method = request.method().clone();
    let scope = if crate::http::control::is_read(&method) {
        Scope::Read
    } else {
        Scope::Launch
    };
    let token = server.access.check(request.headers(), scope)?;
    if scope == Scope::Launch {
        tracing::info!(%token, "{method} {RESERVED_PREFIX}/launches{rest}");
    }
    let origin = public_origin(request.headers());
    let base_path = &server.config.base_path;
    if rest.is_empty() || rest == "/" {
        return match method {
            Method::GET | Method::HEAD => {
                let launches = server.launches.list();
                let all: Vec<_> = launches
                    .iter()
                    .map(|launch| InstanceInfo::new(base_path, &origin, launch, false))
                    .collect();
                Ok(json(
                    StatusCode::OK,
                    &serde_json::json!({ "instances": all }),
                ))
            }
            Method::POST => launch(server, &origin, request).await,
            _ => Err(ApiError::method_not_allowed("GET, HEAD, POST")),
        };
    }
    let Some(name) = rest.strip_prefix('/').filter(|name| !name.contains('/')) else {
        return Err(ApiError::not_found("no such admin endpoint"));
    };
    let mut found = server.launches.peek(name);
    if found.is_none()
        && let Some(follower) = &server.follower
    {
        follower.read_through().await; // launched on another node a moment ago?
        found = server.launches.peek(name);
    }
    let Some(launch) = found else {
        return Err(ApiError::not_found(format!("no instance named `{name}`")));
    };
    match method {
        Method::GET | Method::HEAD => Ok(json(
            StatusCode::OK,
            &InstanceInfo::new(base_path, &origin, &launch, true)
                .with_link(&server.link_keys, &launch),
        )),
        Method::DELETE => {
            // On a task of its own, so a client going away cannot cut it short.
            let (launches, owned_name) = (server.launches.clone(), name.to_owned());
            let removed = tokio::spawn(async move { launches.remove(&owned_name).await })
                .await
                .map_err(anyhow::Error::from)
                .and_then(|removed| removed);
            match removed {
                Ok(_) => Ok(no_content()),
                Err(error) => Err(ApiError::internal("deleting the instance", &error)),
            }
        }
        _ => Err(ApiError::method_not_allowed("GET, HEAD, DELETE")),
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
    /// `public` or `platform`; left out: `platform` with `--auth-url`, else `public`.
    #[serde(default)]
    access: Option<Access>,
    /// An opaque label the platform's check is told (a dataset's id).
    #[serde(default)]
    label: Option<String>,
}

/// Room for the request's other fields around the input.
const LAUNCH_ENVELOPE_BYTES: u64 = 16 << 10;

async fn launch(server: &Server, origin: &str, request: Request<ClientBody>) -> ApiResult {
    let input_limit = server.config.max_instance_input;
    let limit = BodyLimit {
        bytes: input_limit + LAUNCH_ENVELOPE_BYTES,
        what: "the launch request",
        flag: "--max-instance-input",
    };
    let body = read_limited(request, limit).await?;
    let launch: LaunchRequest<'_> = serde_json::from_slice(&body).map_err(|problem| {
        ApiError::bad_request(format!(
            "the body must be JSON like {{\"app\": \"NAME\", \"input\": {{…}}}}: {problem}"
        ))
    })?;
    let input = input_of(launch.input, launch.input_url, input_limit)?;
    let mut gate = gate_of(launch.access, launch.label)?;
    let app = launch.app;
    let mounted = |server: &Server| server.deployer.registry().get(&app).is_some();
    if is_valid_app_name(&app)
        && !mounted(server)
        && let Some(follower) = &server.follower
    {
        follower.read_through().await; // uploaded on another node a moment ago?
    }
    if !is_valid_app_name(&app) || !mounted(server) {
        return Err(ApiError::not_found(format!(
            "no app named `{app}` is mounted"
        )));
    }
    // Who may open it is decided now and stored, never by whichever node serves it later:
    // `platform` when a platform is asked or the app's own manifest says so.
    if gate.access.is_none() {
        let app_is_platform = matches!(server.deployer.registry().get(&app),
            Some(Entry::Ready(mounted)) if mounted.manifest().access == Access::Platform);
        let platform = server.forward_auth.is_some() || app_is_platform;
        gate.access = Some(if platform {
            Access::Platform
        } else {
            Access::Public
        });
    }
    // On a task of its own, so a client going away cannot cut it short.
    let (launches, owned_app, name) = (server.launches.clone(), app.clone(), launch.name);
    let launched = tokio::spawn(async move {
        launches
            .launch(&owned_app, input, name.as_deref(), gate)
            .await
    })
    .await
    .unwrap_or_else(|panic| Err(LaunchError::Store(panic.into())))
    .map_err(|refusal| launch_refusal(&app, refusal))?;
    if server.deployer.registry().get(&app).is_none() {
        // The app was deleted while this launch was written: its instances go with it.
        let (launches, name) = (server.launches.clone(), launched.name.clone());
        let _ = tokio::spawn(async move { launches.remove(&name).await }).await;
        return Err(ApiError::not_found(format!(
            "no app named `{app}` is mounted"
        )));
    }
    tracing::info!(instance = %launched.name, app = %app, "launched");
    let info = InstanceInfo::new(&server.config.base_path, origin, &launched, false)
        .with_link(&server.link_keys, &launched);
    Ok(json(StatusCode::CREATED, &info))
}

/// Who may open a launch: its access and label, the label checked to travel in a header.
fn gate_of(access: Option<Access>, label: Option<String>) -> Result<Gate, ApiError> {
    if let Some(label) = &label
        && (label.len() > MAX_LABEL_LEN || http::HeaderValue::from_str(label).is_err())
    {
        return Err(ApiError::bad_request(format!(
            "`label` is {} bytes or holds control characters; at most {MAX_LABEL_LEN} \
             printable bytes",
            label.len()
        )));
    }
    Ok(Gate {
        access,
        label: label.map(Into::into),
    })
}

/// The input of a launch: exactly one of `input` (JSON, at most `limit` bytes) and
/// `input_url` (an http(s) address).
fn input_of(
    input: Option<&RawValue>,
    input_url: Option<String>,
    limit: u64,
) -> Result<Input, ApiError> {
    match (input, input_url) {
        (Some(input), None) if input.get().len() as u64 > limit => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the input is {}, limit is {} (--max-instance-input)",
                bytesize::ByteSize(input.get().len() as u64),
                bytesize::ByteSize(limit)
            ),
        )),
        (Some(input), None) => Ok(Input::Json(input.get().into())),
        (None, Some(url)) => match url.parse::<http::Uri>() {
            Ok(uri) if matches!(uri.scheme_str(), Some("http" | "https")) => {
                Ok(Input::Url(url.into()))
            }
            _ => Err(ApiError::bad_request(format!(
                "`input_url` `{url}` is not an http(s) URL"
            ))),
        },
        _ => Err(ApiError::bad_request(
            "give exactly one of `input` (the JSON the app gets as INPUT_JSON) and \
             `input_url` (an address it gets as INPUT_JSON_URL)",
        )),
    }
}

/// The status for a refused launch.
fn launch_refusal(app: &str, refusal: LaunchError) -> ApiError {
    let status = match &refusal {
        LaunchError::NameTaken(..) => StatusCode::CONFLICT,
        LaunchError::BadName(_) => StatusCode::BAD_REQUEST,
        LaunchError::NoApp(_) => StatusCode::NOT_FOUND,
        LaunchError::Full(_) | LaunchError::InputsFull { .. } => StatusCode::TOO_MANY_REQUESTS,
        LaunchError::NoRandomness(_) => StatusCode::SERVICE_UNAVAILABLE,
        LaunchError::Store(error) => {
            return ApiError::internal(&format!("storing the launch of `{app}`"), error);
        }
    };
    ApiError::new(status, refusal)
}

/// One launch as the API shows it.
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
    #[serde(skip_serializing_if = "Option::is_none")]
    access: Option<Access>,
    #[serde(skip_serializing_if = "Option::is_none")]
    label: Option<&'a str>,
    /// For `"access": "link"`: a signed link that opens it for 15 minutes (a fresh one each
    /// time the launch is shown).
    #[serde(skip_serializing_if = "Option::is_none")]
    link: Option<String>,
}

impl<'a> InstanceInfo<'a> {
    fn new(base_path: &str, origin: &str, instance: &'a Launch, with_input: bool) -> Self {
        let (input, input_url) = match &instance.input {
            Input::Json(json) if with_input => (serde_json::from_str(json).ok(), None),
            Input::Url(url) if with_input => (None, Some(url.as_ref())),
            _ => (None, None),
        };
        Self {
            name: &instance.name,
            url: format!("{origin}{}/", mount_prefix(base_path, &instance.name)),
            app: &instance.app,
            created: timestamp(instance.created),
            last_used: timestamp(instance.last_used()),
            input_bytes: instance.input.len(),
            input,
            input_url,
            access: instance.gate.access,
            label: instance.gate.label.as_deref(),
            link: None,
        }
    }

    /// With a fresh signed link, when the launch opens with one.
    fn with_link(mut self, keys: &LinkKeys, instance: &Launch) -> Self {
        if instance.gate.access == Some(Access::Link) {
            let subject = LinkSubject {
                launch: &instance.name,
                created_ms: instance.created_ms(),
            };
            let token = keys.sign(subject, SystemTime::now() + LINK_TTL);
            self.link = Some(format!("{}?{LINK_PARAM}={token}", self.url));
        }
        self
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_launch_request_parser_never_panics() {
        crate::fuzz::fuzz("launch", |bytes| {
            if let Ok(launch) = serde_json::from_slice::<LaunchRequest<'_>>(bytes) {
                let _ = input_of(launch.input, launch.input_url, 1 << 20);
                let _ = is_valid_app_name(&launch.app);
            }
        });
    }
}
