//! `/_wasmount/apps`: list, inspect, upload (add or replace) and delete apps.

use crate::apps::app::{App, Compiled, LoadError, Source};
use crate::apps::deploy::DeployError;
use crate::apps::names::RESERVED_PREFIX;
use crate::apps::names::{is_valid_app_name, mount_prefix};
use crate::apps::registry::{Entry, Failure};
use crate::http::admin::body::{BodyLimit, read_upload};
use crate::http::admin::tokens::Scope;
use crate::http::admin::{ApiError, ApiResult, json, respond, timestamp};
use crate::http::control::is_read;
use crate::http::server::Server;
use crate::respond::Body;
use crate::runtime::client_body::ClientBody;
use http::{Method, Request, Response, StatusCode};
use serde::Serialize;

/// Handles `/_wasmount/apps…`; `rest` is the path after `/apps`.
pub(crate) async fn handle(
    server: &Server,
    rest: &str,
    request: Request<ClientBody>,
) -> Response<Body> {
    respond(route(server, rest, request).await)
}

async fn route(server: &Server, rest: &str, request: Request<ClientBody>) -> ApiResult {
    let method = request.method().clone();
    let scope = if is_read(&method) {
        Scope::Read
    } else {
        Scope::Deploy
    };
    if let Some(token) = server.access.check_or_public(request.headers(), scope)?
        && scope != Scope::Read
    {
        tracing::info!(%token, "{method} {RESERVED_PREFIX}/apps{rest}");
    }
    if rest.is_empty() || rest == "/" {
        return match method {
            Method::GET | Method::HEAD => list(server),
            _ => Err(ApiError::method_not_allowed("GET, HEAD")),
        };
    }
    if let Some(name) = rest.strip_prefix('/').and_then(|r| r.strip_suffix("/log")) {
        // Guest output may hold users' data: following it always needs the token.
        server.access.check(request.headers(), Scope::Read)?;
        return match method {
            Method::GET if server.deployer.registry().get(name).is_some() => {
                super::tail::follow(&server.log_tail, name, server.draining.subscribe())
            }
            Method::GET => Err(ApiError::not_found(format!("no app named `{name}`"))),
            _ => Err(ApiError::method_not_allowed("GET")),
        };
    }
    let Some(name) = rest.strip_prefix('/').filter(|name| !name.contains('/')) else {
        return Err(ApiError::not_found("no such admin endpoint"));
    };
    if !is_valid_app_name(name) {
        return Err(ApiError::bad_request(LoadError::BadName(name.to_owned())));
    }
    match method {
        Method::GET | Method::HEAD => {
            // The settings may hold secrets (environment): only for the token's holder.
            let with_manifest = server.access.check(request.headers(), Scope::Read).is_ok();
            inspect(server, name, with_manifest)
        }
        Method::PUT => upload(server, name, request).await,
        Method::DELETE => remove(server, name).await,
        _ => Err(ApiError::method_not_allowed("GET, HEAD, PUT, DELETE")),
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
    source: Option<Source>,
    #[serde(skip_serializing_if = "Option::is_none")]
    compiled: Option<Compiled>,
    #[serde(skip_serializing_if = "Option::is_none")]
    loaded_at: Option<String>,
    /// Versions that went live since the server started.
    deploys: u64,
    /// The last failed load, also while an older version keeps serving.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failed_at: Option<String>,
    /// The settings, when one app is inspected with the token.
    #[serde(skip_serializing_if = "Option::is_none")]
    manifest: Option<serde_json::Value>,
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
            route: format!("{}/", mount_prefix(base_path, name)),
            state: "failed",
            sha256: None,
            size: None,
            source: failure.as_ref().map(|f| f.source),
            compiled: None,
            loaded_at: None,
            deploys,
            failed_at: failure.as_ref().map(|f| timestamp(f.at)),
            error: failure.map(|f| f.reason),
            manifest: None,
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

fn list(server: &Server) -> ApiResult {
    let registry = server.deployer.registry();
    let mut apps: Vec<AppInfo> = registry
        .list()
        .iter()
        .map(|(name, entry)| {
            AppInfo::new(
                &server.config.base_path,
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
                &server.config.base_path,
                &name,
                None,
                Some(failure),
                registry.deploys(&name),
            ));
        }
    }
    apps.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(json(StatusCode::OK, &serde_json::json!({ "apps": apps })))
}

fn inspect(server: &Server, name: &str, with_manifest: bool) -> ApiResult {
    let registry = server.deployer.registry();
    let entry = registry.get(name);
    let failure = registry.failure(name);
    if entry.is_none() && failure.is_none() {
        return Err(ApiError::not_found(format!("no app named `{name}`")));
    }
    let mut info = AppInfo::new(
        &server.config.base_path,
        name,
        entry.as_ref(),
        failure,
        registry.deploys(name),
    );
    if with_manifest && let Some(Entry::Ready(app)) = &entry {
        info.manifest = Some(app.manifest().to_json());
    }
    Ok(json(StatusCode::OK, &info))
}

async fn upload(server: &Server, name: &str, request: Request<ClientBody>) -> ApiResult {
    // Fail fast, before reading the body (the deployer decides again when it commits).
    if server.launches.peek(name).is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("`{name}` is the name of a launch; delete it first"),
        ));
    }
    let limit = BodyLimit {
        bytes: server.config.max_upload,
        what: "upload",
        flag: "--max-upload",
    };
    let (component, manifest) = read_upload(request, limit).await?;
    // On a task of its own: a client that goes away mid-way never leaves the store and the
    // registry disagreeing.
    let (deployer, owned_name) = (server.deployer.clone(), name.to_owned());
    let deployed = tokio::spawn(async move {
        deployer
            .deploy_upload(&owned_name, component, manifest)
            .await
    })
    .await
    .map_err(|panic| ApiError::internal("deploying", &anyhow::anyhow!("{panic}")))?
    .map_err(|refusal| deploy_refusal(name, refusal));
    let result = match &deployed {
        Ok(_) => "deployed",
        Err(refusal) if refusal.status().is_server_error() => "failed",
        Err(_) => "refused",
    };
    server.metrics.uploaded(result);
    let deployed = deployed?;
    let base_path = &server.config.base_path;
    let deploys = server.deployer.registry().deploys(name);
    let mut info = AppInfo::new(base_path, name, None, None, deploys);
    info.state = "serving";
    info.fill_from(&deployed.app, base_path);
    let status = if deployed.replaced {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok(json(
        status,
        &serde_json::json!({
            "app": info,
            "replaced": deployed.replaced,
            "compile_ms": (deployed.app.load_time().as_secs_f64() * 10_000.0).round() / 10.0,
        }),
    ))
}

/// The status and message for a refused upload.
fn deploy_refusal(name: &str, refusal: DeployError) -> ApiError {
    let load = match refusal {
        DeployError::Load(load) => load,
        DeployError::NameTaken(..)
        | DeployError::RouteCovers { .. }
        | DeployError::External(..) => {
            return ApiError::new(StatusCode::CONFLICT, refusal);
        }
        DeployError::Store(error) => return ApiError::internal("storing the app", &error),
    };
    tracing::info!(app = name, "upload refused: {load}");
    let status = match load {
        LoadError::RouteTaken { .. } => StatusCode::CONFLICT,
        LoadError::CoreModule | LoadError::Incompatible(_) | LoadError::Manifest(_) => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        LoadError::CompilerCrashed => StatusCode::INTERNAL_SERVER_ERROR,
        LoadError::BadName(_) | LoadError::Empty | LoadError::NotWasm | LoadError::Invalid(_) => {
            StatusCode::BAD_REQUEST
        }
    };
    ApiError::new(status, load)
}

/// Deletes the app and its launches, and says how many instances went with it.
async fn remove(server: &Server, name: &str) -> ApiResult {
    if let Some(file) = server.deployer.external_file(name) {
        // Its file is not the store's to delete, and it would come back on the next save.
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format_args!(
                "`{name}` is mounted from {}: stop mounting it there instead",
                file.display()
            ),
        ));
    }
    let (deployer, launches, owned_name) = (
        server.deployer.clone(),
        server.launches.clone(),
        name.to_owned(),
    );
    let removal = tokio::spawn(async move {
        let removed = deployer.remove(&owned_name).await?;
        let instances = launches.remove_app(&owned_name).await?;
        anyhow::Ok((removed, instances))
    });
    let (removed, instances) = removal
        .await
        .map_err(anyhow::Error::from)
        .and_then(|removed| removed)
        .map_err(|error| ApiError::internal("removing the app", &error))?;
    if !removed && instances == 0 {
        return Err(ApiError::not_found(format!("no app named `{name}`")));
    }
    if instances > 0 {
        tracing::info!(app = name, instances, "removed with its launches");
    }
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "removed": name, "instances_removed": instances }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_compiler_crash_is_a_500_that_says_so() {
        let refusal = deploy_refusal("app", DeployError::Load(LoadError::CompilerCrashed));
        assert_eq!(refusal.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(
            refusal.message.contains("compiler crashed"),
            "{}",
            refusal.message
        );
        assert!(!refusal.message.contains("stored"), "{}", refusal.message);
    }
}
