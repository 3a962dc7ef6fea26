//! One loaded app version: its name, content hash, settings, and the runtime's linked
//! [`Guest`]. Loading validates everything (wasm, component, imports, the
//! `wasi:http/incoming-handler` export) before the app can be mounted, so a bad file never
//! goes live.

use crate::apps::manifest::Manifest;
use crate::apps::names::{MAX_APP_NAME_LEN, is_valid_app_name, mount_prefix};
use crate::config::AppDefaults;
use crate::metrics::Metrics;
use crate::runtime::engine::{Tier, WasmEngine};
use crate::runtime::fairness::Fairness;
use crate::runtime::guest::{Guest, ServerShared};
use crate::runtime::guest_log::LogTail;
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use wasmtime::component::Component;

const WASM_MAGIC: &[u8; 4] = b"\0asm";
/// The version/layer word of a core module (`01 00 00 00`); components use another layer.
const CORE_MODULE_VERSION: [u8; 4] = [1, 0, 0, 0];

/// Why an app could not be loaded. Callers branch on it (an upload maps it to a status).
#[derive(Debug, thiserror::Error)]
pub(crate) enum LoadError {
    /// The name breaks the naming rule.
    #[error(
        "app name `{0}` is invalid: use lowercase letters, digits and `-`, starting with a \
         letter or digit, at most {MAX_APP_NAME_LEN} characters"
    )]
    BadName(String),
    /// Nothing was sent or stored.
    #[error("the component is empty (0 bytes)")]
    Empty,
    /// The bytes are not WebAssembly at all (this includes precompiled `.cwasm` artifacts,
    /// which are never accepted from outside).
    #[error(
        "not a WebAssembly component: it does not start with the `\\0asm` magic bytes \
         (precompiled .cwasm files are not accepted)"
    )]
    NotWasm,
    /// A core module, which cannot serve HTTP.
    #[error(
        "this is a core WebAssembly module, not a component: build with \
         `--target wasm32-wasip2` (or wrap it with `wasm-tools component new`)"
    )]
    CoreModule,
    /// wasmtime could not validate or compile it (truncated, malformed, unsupported feature).
    #[error("invalid component: {0:#}")]
    Invalid(anyhow::Error),
    /// It imports something the host does not provide, or lacks `wasi:http/incoming-handler`.
    #[error("component cannot be served: {0:#}")]
    Incompatible(anyhow::Error),
    /// Its manifest (`NAME.toml`) is invalid.
    #[error("invalid manifest: {0}")]
    Manifest(String),
    /// Its manifest asks for a route another app already serves.
    #[error("route `{route}` is already the route of app `{by}`")]
    RouteTaken {
        /// The route.
        route: String,
        /// The app serving it.
        by: String,
    },
    /// The compiler itself failed (a bug in it, not in the component): nothing went live.
    #[error("the compiler crashed on this component; see the server log")]
    CompilerCrashed,
}

/// How the current version of an app got mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Source {
    /// Found in the apps folder.
    Folder,
    /// Sent through the admin API.
    Upload,
}

/// How the app's machine code was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Compiled {
    /// Compiled now by the optimizing compiler (Cranelift).
    Fresh,
    /// Loaded from the host's own compiled cache.
    Cache,
    /// Compiled now by the baseline compiler (Winch): quick to produce, slower to run; the
    /// optimized version replaces it as soon as it is ready.
    Baseline,
}

/// What identifies one version of an app's component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Version {
    /// Lowercase hex SHA-256 of the component bytes.
    pub sha256: String,
    /// Size of the component in bytes.
    pub size: u64,
}

impl Version {
    /// The version of `bytes`.
    pub(crate) fn of(bytes: &[u8]) -> Self {
        Self {
            sha256: crate::client::sha256_hex(bytes),
            size: bytes.len() as u64,
        }
    }
}

/// Where a version comes from: its content, how it arrived, and its settings.
#[derive(Debug, Clone)]
pub(crate) struct Origin {
    /// The component's hash and size.
    pub version: Version,
    /// How it arrived.
    pub source: Source,
    /// Its checked settings.
    pub manifest: Arc<Manifest>,
}

/// What linking an app needs besides its component: the engines, the server's defaults for
/// what manifests leave out, and the server's CPU fairness.
pub(crate) struct LinkContext {
    /// The engines apps run on.
    pub engine: WasmEngine,
    /// Settings for what a manifest leaves out.
    pub defaults: AppDefaults,
    /// How the server's apps share the CPU.
    pub fairness: Arc<Fairness>,
    /// The server's metrics.
    pub metrics: Arc<Metrics>,
    /// The server's feed of guest output.
    pub log_tail: LogTail,
}

/// A validated, compiled app, ready to instantiate for each request.
pub(crate) struct App {
    name: Arc<str>,
    guest: Arc<Guest>,
    manifest: Arc<Manifest>,
    version: Version,
    source: Source,
    compiled: Compiled,
    loaded_at: SystemTime,
    load_time: Duration,
}

/// Checks what can be checked without compiling: the name, and that the bytes look like a
/// component rather than a core module or something else.
///
/// # Errors
///
/// [`LoadError::BadName`], [`LoadError::Empty`], [`LoadError::NotWasm`] or
/// [`LoadError::CoreModule`].
pub(crate) fn precheck(name: &str, bytes: &[u8]) -> Result<(), LoadError> {
    if !is_valid_app_name(name) {
        return Err(LoadError::BadName(name.to_owned()));
    }
    if bytes.is_empty() {
        return Err(LoadError::Empty);
    }
    if bytes.len() < 8 || &bytes[..4] != WASM_MAGIC {
        return Err(LoadError::NotWasm);
    }
    if bytes[4..8] == CORE_MODULE_VERSION {
        return Err(LoadError::CoreModule);
    }
    Ok(())
}

impl App {
    /// Validates and compiles `bytes` (whose hash is `version`) as app `name`; also returns
    /// the component so the caller can cache it. CPU-heavy: call it off the async runtime.
    ///
    /// # Errors
    ///
    /// A [`LoadError`] saying what is wrong; nothing is mounted.
    pub(crate) fn compile(
        context: &LinkContext,
        tier: &Tier,
        name: &str,
        bytes: &[u8],
        origin: Origin,
        compiled: Compiled,
    ) -> Result<(Self, Component), LoadError> {
        precheck(name, bytes)?;
        let started = Instant::now();
        let component =
            Component::new(tier.engine(), bytes).map_err(|e| LoadError::Invalid(e.into()))?;
        let app = Self::link(context, tier, name, &component, origin, compiled, started)?;
        let optimized = !matches!(compiled, Compiled::Baseline);
        context.metrics.compiled(optimized, app.load_time());
        Ok((app, component))
    }

    /// Links an already compiled component (from the cache) as app `name`.
    ///
    /// # Errors
    ///
    /// [`LoadError::Incompatible`] if the host cannot serve it.
    pub(crate) fn from_cache(
        context: &LinkContext,
        tier: &Tier,
        name: &str,
        component: &Component,
        origin: Origin,
        started: Instant,
    ) -> Result<Self, LoadError> {
        Self::link(
            context,
            tier,
            name,
            component,
            origin,
            Compiled::Cache,
            started,
        )
    }

    fn link(
        context: &LinkContext,
        tier: &Tier,
        name: &str,
        component: &Component,
        origin: Origin,
        compiled: Compiled,
        started: Instant,
    ) -> Result<Self, LoadError> {
        let manifest = origin.manifest;
        let spec = manifest.guest_spec(name, &context.defaults);
        let policy = manifest.policy(&context.defaults);
        let guest = Guest::link(
            &context.engine,
            tier,
            component,
            spec,
            policy,
            ServerShared {
                fairness: &context.fairness,
                metrics: &context.metrics,
                log_tail: &context.log_tail,
            },
        )
        .map_err(LoadError::Incompatible)?;
        Ok(Self {
            name: name.into(),
            guest: Arc::new(guest),
            manifest,
            version: origin.version,
            source: origin.source,
            compiled,
            loaded_at: SystemTime::now(),
            load_time: started.elapsed(),
        })
    }

    /// The app's name, which is also its mount point.
    pub(crate) fn name(&self) -> &Arc<str> {
        &self.name
    }

    /// What the runtime runs.
    pub(crate) fn guest(&self) -> &Arc<Guest> {
        &self.guest
    }

    /// Where the app is mounted under `base`: its manifest's route, else `/NAME`.
    pub(crate) fn prefix(&self, base: &str) -> String {
        match &self.manifest.route {
            Some(route) => format!("{base}{route}"),
            None => mount_prefix(base, &self.name),
        }
    }

    /// The app's settings.
    pub(crate) fn manifest(&self) -> &Arc<Manifest> {
        &self.manifest
    }

    /// The component's hash and size.
    pub(crate) fn version(&self) -> &Version {
        &self.version
    }

    /// Size of the component file in bytes.
    pub(crate) fn size(&self) -> u64 {
        self.version.size
    }

    /// Where this version came from.
    pub(crate) fn source(&self) -> Source {
        self.source
    }

    /// Whether the code was compiled now or taken from the cache.
    pub(crate) fn compiled(&self) -> Compiled {
        self.compiled
    }

    /// When this version was loaded.
    pub(crate) fn loaded_at(&self) -> SystemTime {
        self.loaded_at
    }

    /// How long compiling (or loading from the cache) and linking took.
    pub(crate) fn load_time(&self) -> Duration {
        self.load_time
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prechecks_tell_apart_empty_foreign_and_core_files() {
        assert!(matches!(
            precheck("Bad", b"\0asm\x0d\0\x01\0"),
            Err(LoadError::BadName(_))
        ));
        assert!(matches!(precheck("a", b""), Err(LoadError::Empty)));
        assert!(matches!(
            precheck("a", b"\x7fELF\x02\x01\x01\0"),
            Err(LoadError::NotWasm)
        ));
        assert!(matches!(precheck("a", b"\0asm"), Err(LoadError::NotWasm)));
        assert!(matches!(
            precheck("a", b"\0asm\x01\0\0\0"),
            Err(LoadError::CoreModule)
        ));
        assert!(precheck("a", b"\0asm\x0d\0\x01\0").is_ok());
    }

    #[test]
    fn versions_hash_the_bytes() {
        let version = Version::of(b"abc");
        assert_eq!(version.size, 3);
        assert_eq!(
            version.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
