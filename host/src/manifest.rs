//! The optional app manifest, `NAME.toml` beside `NAME.wasm`: what the app is granted and
//! what it may use. Unknown keys are errors, so a typo never passes silently.
//!
//! ```toml
//! route = "/custom"                 # default /NAME
//! environment = { TITLE = "Expression heatmap" }
//! files = "heatmap-data"            # folder in the apps folder, read-only at /data
//! allowed_outbound_hosts = ["https://data.example.org:443"]   # default: none
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

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

/// The folder where a manifest's `files` are granted inside the guest.
pub const FILES_GUEST_PATH: &str = "/data";

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

/// How long an idle reusable instance is kept, unless the manifest says otherwise.
pub const DEFAULT_REUSE_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How many idle reusable instances an app keeps, unless the manifest says otherwise.
pub const DEFAULT_MAX_IDLE_INSTANCES: usize = 16;

/// Instance reuse, opted into by an app: one instance serves several requests in turn, so
/// globals persist between those requests (never between apps, never after a trap or a
/// timeout). Worth it for big interpreters, whose instantiation is most of a request's cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reuse {
    /// Requests one instance serves before it is dropped.
    pub max_requests: u32,
    /// How long an idle instance is kept.
    pub idle_timeout: Duration,
    /// How many idle instances are kept.
    pub max_idle_instances: usize,
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
pub struct Manifest {
    /// Where the app is mounted instead of `/NAME` (normalized, no trailing slash).
    pub route: Option<String>,
    /// Environment variables the guest sees (besides `WASMOUNT_APP` and `WASMOUNT_BASE_PATH`).
    pub environment: Vec<(String, String)>,
    /// The host folder granted read-only at [`FILES_GUEST_PATH`].
    pub files: Option<PathBuf>,
    /// Where the app may send HTTP requests; empty: nowhere.
    pub allowed_outbound_hosts: Vec<OutboundHost>,
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

impl Reuse {
    fn from_file(file: ReuseFile) -> Result<Self, String> {
        if file.max_requests == 0 {
            return Err("reuse.max_requests must be at least 1".into());
        }
        let idle_timeout = file
            .idle_timeout
            .map(|v| {
                humantime::parse_duration(&v)
                    .map_err(|e| format!("reuse.idle_timeout = `{v}`: {e}"))
            })
            .transpose()?
            .unwrap_or(DEFAULT_REUSE_IDLE_TIMEOUT);
        Ok(Self {
            max_requests: file.max_requests,
            idle_timeout,
            max_idle_instances: file
                .max_idle_instances
                .unwrap_or(DEFAULT_MAX_IDLE_INSTANCES),
        })
    }
}

impl Manifest {
    /// Parses a manifest; `apps_dir` is where `files` folders live.
    ///
    /// # Errors
    ///
    /// A message naming the key and what is wrong with it.
    pub fn parse(text: &str, apps_dir: &Path) -> Result<Self, String> {
        let file: ManifestFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let route = file
            .route
            .map(|route| crate::router::normalize_route(&route))
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
            .map(|v| {
                humantime::parse_duration(&v)
                    .map_err(|e| format!("limits.request_timeout = `{v}`: {e}"))
            })
            .transpose()?;
        if limits.max_concurrent_requests == Some(0) {
            return Err("limits.max_concurrent_requests must be at least 1".into());
        }
        let reuse = file.reuse.map(Reuse::from_file).transpose()?;
        Ok(Self {
            reuse,
            route,
            environment: file.environment.into_iter().collect(),
            files,
            allowed_outbound_hosts,
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
    pub fn read_beside(wasm_path: &Path, apps_dir: &Path) -> Result<Self, String> {
        let path = wasm_path.with_extension(crate::store::MANIFEST_EXTENSION);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                Self::parse(&text, apps_dir).map_err(|e| format!("{}: {e}", path.display()))
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(error) => Err(format!("reading {}: {error}", path.display())),
        }
    }
}

/// One allowed destination for outgoing HTTP: scheme, host and port, all exact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundHost {
    /// `http` or `https`.
    pub scheme: String,
    /// The host name or address, lowercase.
    pub host: String,
    /// The port (the scheme's default when left out).
    pub port: u16,
}

impl OutboundHost {
    /// Parses `scheme://host[:port]`.
    ///
    /// # Errors
    ///
    /// A message naming the entry.
    pub fn parse(entry: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("allowed_outbound_hosts entry `{entry}`: {why}");
        let uri: http::Uri = entry.parse().map_err(|_| bad("not a URL"))?;
        let scheme = uri
            .scheme_str()
            .ok_or_else(|| bad("needs a scheme, e.g. https://"))?;
        let default_port = match scheme {
            "http" => 80,
            "https" => 443,
            _ => return Err(bad("the scheme must be http or https")),
        };
        if uri
            .path_and_query()
            .is_some_and(|p| p.as_str() != "/" && !p.as_str().is_empty())
        {
            return Err(bad("give scheme, host and port only, no path"));
        }
        let authority = uri.authority().ok_or_else(|| bad("needs a host"))?;
        Ok(Self {
            scheme: scheme.to_owned(),
            host: authority.host().to_ascii_lowercase(),
            port: authority.port_u16().unwrap_or(default_port),
        })
    }

    /// Whether a request to `uri` goes to this destination.
    pub fn allows(&self, uri: &http::Uri) -> bool {
        let scheme = uri.scheme_str().unwrap_or("https");
        let default_port = if scheme == "http" { 80 } else { 443 };
        scheme == self.scheme
            && uri
                .host()
                .is_some_and(|h| h.eq_ignore_ascii_case(&self.host))
            && uri.port_u16().unwrap_or(default_port) == self.port
    }
}

/// `files` must name a folder inside the apps folder: relative, no `..`, existing.
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
            "files = `{folder}`: no such folder in {}",
            apps_dir.display()
        ));
    }
    Ok(path)
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
        assert_eq!(manifest.files, Some(dir.path().join("data")));
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
        assert!(error("files = \"../etc\"").contains("files"));
        assert!(error("files = \"/etc\"").contains("files"));
        assert!(error("files = \"missing\"").contains("no such folder"));
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
    fn outbound_hosts_match_scheme_host_and_port_exactly() {
        let host = OutboundHost::parse("https://Data.Example.org").unwrap();
        assert_eq!(host.port, 443);
        assert!(host.allows(&"https://data.example.org/x?y".parse().unwrap()));
        assert!(host.allows(&"https://data.example.org:443/".parse().unwrap()));
        assert!(!host.allows(&"http://data.example.org/".parse().unwrap()));
        assert!(!host.allows(&"https://data.example.org:8443/".parse().unwrap()));
        assert!(!host.allows(&"https://evil.org/".parse().unwrap()));
        let local = OutboundHost::parse("http://127.0.0.1:8080").unwrap();
        assert!(local.allows(&"http://127.0.0.1:8080/data.tsv".parse().unwrap()));
    }
}
