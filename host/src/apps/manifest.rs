//! The optional app manifest, `NAME.toml` beside `NAME.wasm`: what the app is granted and
//! what it may use. Unknown keys are errors, so a typo never passes silently.
//!
//! ```toml
//! route = "/custom"                 # default /NAME
//! environment = { TITLE = "Expression heatmap" }
//! files = "heatmap-data"            # folder in the apps folder, read-only at /data
//! allowed_outbound_hosts = ["https://data.example.org:443"]   # default: none
//! cookies = ["session"]             # the client's cookies the guest sees (default: none)
//! forward_authorization = true      # the guest sees `Authorization` (default: false)
//! access = "platform"               # each request asks the platform (--auth-url); default public
//! [limits]
//! memory = "128MiB"                 # whole instance, all memories together
//! request_timeout = "30s"           # wall clock, body included
//! max_concurrent_requests = 64      # beyond it: 503 with retry-after
//! max_request_body = "10MiB"        # beyond it: 413
//! [reuse]                           # off by default: a fresh instance per request
//! max_requests = 1000               # requests one instance serves, then it is dropped
//! idle_timeout = "60s"              # an idle instance is dropped after this (default 60s)
//! max_idle_instances = 16           # idle instances kept (default 16)
//! ```

use crate::apps::names::normalize_route;
use crate::apps::store::{MANIFEST_EXTENSION, ReadError, read_regular_file};
use crate::config::{Access, AppDefaults, DEFAULT_MAX_IDLE_INSTANCES, DEFAULT_REUSE_IDLE_TIMEOUT};
use crate::runtime::guest::GuestPolicy;
use crate::runtime::reuse::Reuse;
use crate::runtime::sandbox::{GuestSpec, InstanceLimits, OutboundHost};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The largest manifest read: far more than any real one needs.
const MAX_MANIFEST_BYTES: u64 = 64 << 10;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestFile {
    route: Option<String>,
    #[serde(default)]
    environment: BTreeMap<String, String>,
    files: Option<String>,
    #[serde(default)]
    allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    cookies: Vec<String>,
    #[serde(default)]
    forward_authorization: bool,
    #[serde(default)]
    access: Access,
    #[serde(default)]
    limits: LimitsFile,
    reuse: Option<ReuseFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReuseFile {
    max_requests: u32,
    idle_timeout: Option<String>,
    max_idle_instances: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsFile {
    memory: Option<String>,
    request_timeout: Option<String>,
    max_concurrent_requests: Option<u32>,
    max_request_body: Option<String>,
}

/// An app's settings, checked and resolved. Every limit left out falls back to the server's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Manifest {
    /// Where the app is mounted instead of `/NAME` (normalized, no trailing slash).
    pub route: Option<String>,
    /// Environment variables the guest sees (besides `WASMOUNT_APP` and `WASMOUNT_BASE_PATH`).
    pub environment: Vec<(String, String)>,
    /// The host folder granted read-only at `/data`.
    pub files: Option<PathBuf>,
    /// That folder as the manifest names it (relative to the apps folder): what is shown.
    pub files_as_written: Option<String>,
    /// Where the app may send HTTP requests; empty: nowhere.
    pub allowed_outbound_hosts: Vec<OutboundHost>,
    /// The names of the client's cookies the guest sees; the others stay with their owners
    /// (a platform's session, another app's).
    pub cookies: Vec<String>,
    /// Whether the guest sees the client's `Authorization` header.
    pub forward_authorization: bool,
    /// Who may open it (its launches follow the server's and the launch's setting).
    pub access: Access,
    /// Linear memory of one instance, in bytes.
    pub memory: Option<u64>,
    /// Deadline of one request.
    pub request_timeout: Option<Duration>,
    /// Requests of this app running at once.
    pub max_concurrent_requests: Option<u32>,
    /// Largest request body, in bytes.
    pub max_request_body: Option<u64>,
    /// Instance reuse; `None`: a fresh instance per request.
    pub reuse: Option<Reuse>,
}

impl ReuseFile {
    fn resolve(self) -> Result<Reuse, String> {
        let file = self;
        if file.max_requests == 0 {
            return Err("reuse.max_requests must be at least 1".into());
        }
        let idle_timeout = file
            .idle_timeout
            .map(|v| parse_duration("reuse.idle_timeout", &v))
            .transpose()?
            .unwrap_or(DEFAULT_REUSE_IDLE_TIMEOUT);
        Ok(Reuse {
            max_requests: file.max_requests,
            idle_timeout,
            max_idle_instances: file
                .max_idle_instances
                .unwrap_or(DEFAULT_MAX_IDLE_INSTANCES),
        })
    }
}

/// A TOML error as line, column and key only: the parser's own message quotes the line,
/// and a manifest's lines may hold secrets (`environment`), while the error reaches public
/// answers (the app list, a 404, dev mode's header). The whole message goes to the log.
fn toml_problem(text: &str, error: &toml::de::Error) -> String {
    tracing::warn!("a manifest is not valid TOML: {error}");
    let Some(span) = error.span() else {
        return "not valid TOML".to_owned();
    };
    let before = &text[..span.start.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    let key = text
        .lines()
        .nth(line - 1)
        .and_then(|line| line.split_once('='))
        .map(|(key, _)| key.trim())
        .filter(|key| {
            !key.is_empty()
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        });
    // Messages about keys (a typo, a missing one) name only keys: those help and are safe.
    let about_keys = ["unknown field", "missing field", "duplicate key"]
        .iter()
        .any(|start| error.message().starts_with(start));
    let what = if about_keys {
        error.message().lines().next().unwrap_or_default()
    } else {
        "not valid here"
    };
    match key {
        Some(key) => format!("line {line}, column {column}, key `{key}`: {what}"),
        None => format!("line {line}, column {column}: {what}"),
    }
}

/// Whether `name` may be a cookie's name (RFC 6265's token).
fn is_cookie_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b))
}

impl Manifest {
    /// Parses a manifest; `apps_dir` is where `files` folders live.
    ///
    /// # Errors
    ///
    /// A message naming the key and what is wrong with it.
    pub(crate) fn parse(text: &str, apps_dir: &Path) -> Result<Self, String> {
        let file: ManifestFile = toml::from_str(text).map_err(|e| toml_problem(text, &e))?;
        if file.access == Access::Link {
            return Err(
                "access = \"link\" is for launches (launch with \"access\": \"link\")".into(),
            );
        }
        if let Some(bad) = file.cookies.iter().find(|name| !is_cookie_name(name)) {
            return Err(format!("cookies: `{bad}` is not a cookie name"));
        }
        let route = file
            .route
            .map(|route| normalize_route(&route))
            .transpose()?;
        let allowed_outbound_hosts = file
            .allowed_outbound_hosts
            .iter()
            .map(|entry| OutboundHost::parse(entry))
            .collect::<Result<Vec<_>, _>>()?;
        for name in file.environment.keys() {
            if name.is_empty() || name.contains('=') || name.starts_with("WASMOUNT_") {
                return Err(format!(
                    "environment variable `{name}` is not allowed (empty, contains `=`, or \
                     uses the reserved WASMOUNT_ prefix)"
                ));
            }
        }
        let files_as_written = file.files.clone();
        let files = file
            .files
            .map(|folder| files_folder(&folder, apps_dir))
            .transpose()?;
        let size = |key: &str, value: Option<String>| -> Result<Option<u64>, String> {
            value
                .map(|v| {
                    v.parse::<bytesize::ByteSize>()
                        .map(|b| b.as_u64())
                        .map_err(|e| format!("limits.{key} = `{v}`: {e}"))
                })
                .transpose()
        };
        let limits = file.limits;
        let request_timeout = limits
            .request_timeout
            .map(|v| parse_duration("limits.request_timeout", &v))
            .transpose()?;
        if limits.max_concurrent_requests == Some(0) {
            return Err("limits.max_concurrent_requests must be at least 1".into());
        }
        let reuse = file.reuse.map(ReuseFile::resolve).transpose()?;
        Ok(Self {
            reuse,
            route,
            environment: file.environment.into_iter().collect(),
            files,
            files_as_written,
            allowed_outbound_hosts,
            cookies: file.cookies,
            forward_authorization: file.forward_authorization,
            access: file.access,
            memory: size("memory", limits.memory)?,
            request_timeout,
            max_concurrent_requests: limits.max_concurrent_requests,
            max_request_body: size("max_request_body", limits.max_request_body)?,
        })
    }

    /// Reads the manifest beside the component at `wasm_path` (`NAME.toml`), if there is one.
    ///
    /// # Errors
    ///
    /// If it exists but cannot be read or is invalid.
    pub(crate) fn read_beside(wasm_path: &Path, apps_dir: &Path) -> Result<Self, String> {
        let path = wasm_path.with_extension(MANIFEST_EXTENSION);
        let text = match read_regular_file(&path, MAX_MANIFEST_BYTES, "manifests") {
            Ok(bytes) => String::from_utf8(bytes)
                .map_err(|_| format!("{}: not UTF-8 text", file_name(&path)))?,
            Err(ReadError::Missing) => return Ok(Self::default()),
            Err(ReadError::Refused(why)) => return Err(why),
        };
        Self::parse(&text, apps_dir).map_err(|e| format!("{}: {e}", file_name(&path)))
    }
}

impl Manifest {
    /// The settings as JSON, in the file's own keys (limits and reuse as tables); keys left
    /// out of the manifest are left out here too. Sizes are bytes, durations text ("30s").
    pub(crate) fn to_json(&self) -> serde_json::Value {
        let mut limits = serde_json::Map::new();
        let mut put = |key: &str, value: Option<serde_json::Value>| {
            if let Some(value) = value {
                limits.insert(key.to_owned(), value);
            }
        };
        put("memory", self.memory.map(Into::into));
        put(
            "request_timeout",
            self.request_timeout
                .map(|t| humantime::format_duration(t).to_string().into()),
        );
        put(
            "max_concurrent_requests",
            self.max_concurrent_requests.map(Into::into),
        );
        put("max_request_body", self.max_request_body.map(Into::into));
        let mut json = serde_json::json!({
            "environment": self.environment.iter().cloned().collect::<BTreeMap<_, _>>(),
            "allowed_outbound_hosts": self
                .allowed_outbound_hosts
                .iter()
                .map(|host| format!("{}://{}:{}", host.scheme, host.host, host.port))
                .collect::<Vec<_>>(),
            "limits": limits,
            "cookies": self.cookies,
            "forward_authorization": self.forward_authorization,
            "access": self.access,
        });
        if let Some(route) = &self.route {
            json["route"] = route.as_str().into();
        }
        if let Some(files) = &self.files_as_written {
            json["files"] = files.as_str().into();
        }
        if let Some(reuse) = &self.reuse {
            json["reuse"] = serde_json::json!({
                "max_requests": reuse.max_requests,
                "idle_timeout": humantime::format_duration(reuse.idle_timeout).to_string(),
                "max_idle_instances": reuse.max_idle_instances,
            });
        }
        json
    }

    /// The sandbox of app `name` under these settings, the server's `defaults` filling in
    /// what the manifest leaves out: resolved once per app version, never per request.
    pub(crate) fn guest_spec(&self, name: &str, defaults: &AppDefaults) -> GuestSpec {
        let mut env = vec![
            ("WASMOUNT_APP".to_owned(), name.to_owned()),
            ("WASMOUNT_BASE_PATH".to_owned(), defaults.base_path.clone()),
        ];
        env.extend(self.environment.iter().cloned());
        GuestSpec {
            name: name.into(),
            env,
            files: self.files.clone(),
            outbound: self
                .allowed_outbound_hosts
                .iter()
                .cloned()
                .collect::<Arc<[_]>>(),
            limits: InstanceLimits {
                timeout: self.request_timeout.unwrap_or(defaults.request_timeout),
                memory_bytes: self.memory.unwrap_or(defaults.instance_memory_bytes),
                max_request_body: self.max_request_body.unwrap_or(defaults.max_request_body),
                body_read_timeout: defaults.body_read_timeout,
            },
        }
    }

    /// How many of the app's requests may run at once, and whether it reuses instances.
    pub(crate) fn policy(&self, defaults: &AppDefaults) -> GuestPolicy {
        GuestPolicy {
            max_concurrent_requests: self
                .max_concurrent_requests
                .or(defaults.max_concurrent_requests),
            reuse: self.reuse,
        }
    }
}

/// The last part of `path`, for messages that must not show the host's folders.
pub(crate) fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || "?".to_owned(),
        |name| name.to_string_lossy().into_owned(),
    )
}

/// A duration setting: valid, and no longer than [`crate::config::MAX_DURATION`].
fn parse_duration(key: &str, value: &str) -> Result<Duration, String> {
    let duration =
        humantime::parse_duration(value).map_err(|e| format!("{key} = `{value}`: {e}"))?;
    crate::config::check_duration(key, duration).map_err(|e| e.to_string())?;
    Ok(duration)
}

/// `files` must name a folder inside the apps folder: relative, no `..`, existing, and
/// still inside once symbolic links are resolved. The resolved path is what is granted.
/// Messages name the folder as written, never the host's paths.
fn files_folder(folder: &str, apps_dir: &Path) -> Result<PathBuf, String> {
    let relative = Path::new(folder);
    let plain = relative
        .components()
        .all(|c| matches!(c, Component::Normal(_)));
    if folder.is_empty() || !plain || folder.starts_with('.') {
        return Err(format!(
            "files = `{folder}`: must be a folder inside the apps folder (relative, no `..`, \
             not hidden)"
        ));
    }
    let path = apps_dir.join(relative);
    if !path.is_dir() {
        return Err(format!(
            "files = `{folder}`: no such folder in the apps folder"
        ));
    }
    let resolved = path
        .canonicalize()
        .map_err(|e| format!("files = `{folder}`: {e}"))?;
    let root = apps_dir
        .canonicalize()
        .map_err(|e| format!("files = `{folder}`: the apps folder: {e}"))?;
    if !resolved.starts_with(&root) {
        return Err(format!(
            "files = `{folder}`: a link leading outside the apps folder is not allowed"
        ));
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_manifest_resolves() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("data")).unwrap();
        let manifest = Manifest::parse(
            r#"
            environment = { TITLE = "Heatmap" }
            files = "data"
            [limits]
            memory = "64MiB"
            request_timeout = "2s"
            max_concurrent_requests = 4
            max_request_body = "1MiB"
            [reuse]
            max_requests = 500
            idle_timeout = "5s"
            "#,
            dir.path(),
        )
        .unwrap();
        assert_eq!(
            manifest.environment,
            [("TITLE".to_owned(), "Heatmap".to_owned())]
        );
        assert_eq!(
            manifest.files,
            Some(dir.path().join("data").canonicalize().unwrap())
        );
        assert_eq!(manifest.memory, Some(64 << 20));
        assert_eq!(manifest.request_timeout, Some(Duration::from_secs(2)));
        assert_eq!(manifest.max_concurrent_requests, Some(4));
        assert_eq!(manifest.max_request_body, Some(1 << 20));
        assert_eq!(
            manifest.reuse,
            Some(Reuse {
                max_requests: 500,
                idle_timeout: Duration::from_secs(5),
                max_idle_instances: DEFAULT_MAX_IDLE_INSTANCES,
            })
        );
        assert_eq!(Manifest::parse("", dir.path()).unwrap().reuse, None);
    }

    #[test]
    fn mistakes_are_errors_naming_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let error = |text: &str| Manifest::parse(text, dir.path()).unwrap_err();
        assert!(error("enviroment = {}").contains("enviroment"));
        assert!(error("[limits]\nmemory = \"lots\"").contains("limits.memory"));
        assert!(error("[limits]\nrequest_timeout = \"soon\"").contains("limits.request_timeout"));
        assert!(
            error("[limits]\nrequest_timeout = \"500000000000years\"")
                .contains("longer than the longest accepted")
        );
        assert!(
            error("[reuse]\nmax_requests = 2\nidle_timeout = \"10000years\"")
                .contains("reuse.idle_timeout")
        );
        assert!(error("files = \"../etc\"").contains("files"));
        assert!(error("files = \"/etc\"").contains("files"));
        assert!(error("files = \"missing\"").contains("no such folder"));
        std::os::unix::fs::symlink("/etc", dir.path().join("etclink")).unwrap();
        assert!(error("files = \"etclink\"").contains("outside the apps folder"));
        assert!(error("environment = { WASMOUNT_APP = \"x\" }").contains("reserved"));
        assert!(error("route = \"/_wasmount/x\"").contains("reserved"));
        assert!(error("allowed_outbound_hosts = [\"ftp://x\"]").contains("http or https"));
        assert!(error("allowed_outbound_hosts = [\"data.org\"]").contains("scheme"));
        assert!(error("[reuse]\nmax_requests = 0").contains("reuse.max_requests"));
        assert!(error("[reuse]\nidle_timeout = \"1s\"").contains("max_requests"));
        assert!(
            error("[reuse]\nmax_requests = 2\nidle_timeout = \"x\"").contains("reuse.idle_timeout")
        );
    }

    #[test]
    fn the_manifest_parser_never_panics() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("data")).unwrap();
        crate::fuzz::fuzz("manifest", |bytes| {
            let _ = Manifest::parse(&String::from_utf8_lossy(bytes), dir.path());
        });
    }
}
