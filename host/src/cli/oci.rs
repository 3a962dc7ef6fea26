//! OCI registries for `wasmount deploy oci://…` and `wasmount push FILE oci://…`: a
//! component as the CNCF wasm artifact `wkg` and `wash` push (config
//! `application/vnd.wasm.config.v0+json`, one `application/wasm` layer), or a single-layer
//! image of `application/vnd.wasm.content.layer.v1+wasm`. Digests are verified; credentials
//! come from the flags or the Docker config file.

use anyhow::Context as _;
use clap::Args;
use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::manifest::{OciDescriptor, OciImageManifest};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use std::path::{Path, PathBuf};

/// The scheme that marks a registry address where a file could be given.
pub(crate) const SCHEME: &str = "oci://";
/// The config of a wasm component artifact.
const WASM_CONFIG: &str = "application/vnd.wasm.config.v0+json";
/// Its one layer.
const WASM_LAYER: &str = "application/wasm";
/// The layer of a single-layer image holding wasm content.
const WASM_CONTENT_LAYER: &str = "application/vnd.wasm.content.layer.v1+wasm";
/// The largest component pulled (the server still applies its own `--max-upload`).
const MAX_PULL_BYTES: u64 = 1 << 30;

/// How to reach a registry.
#[derive(Debug, Clone, Args)]
pub(crate) struct RegistryArgs {
    /// Registry user name (else the Docker config file's credentials, else anonymous).
    #[arg(
        long,
        env = "WASMOUNT_REGISTRY_USER",
        value_name = "USER",
        requires = "registry_password"
    )]
    registry_user: Option<String>,

    /// Registry password or token.
    #[arg(
        long,
        env = "WASMOUNT_REGISTRY_PASSWORD",
        value_name = "PASSWORD",
        hide_env_values = true
    )]
    registry_password: Option<String>,

    /// Speak plain HTTP to the registry (a local test registry), not HTTPS.
    #[arg(long)]
    plain_http: bool,
}

/// The reference of `location` when it is `oci://HOST[:PORT]/REPO[:TAG|@sha256:…]`.
///
/// # Errors
///
/// An `oci://` address that is not a valid reference.
pub(crate) fn reference_of(location: &str) -> Option<anyhow::Result<Reference>> {
    let rest = location.strip_prefix(SCHEME)?;
    Some(rest.parse::<Reference>().with_context(|| {
        format!("`{location}` is not oci://HOST[:PORT]/REPO[:TAG|@sha256:DIGEST]")
    }))
}

/// The last part of a reference's repository: the app name `deploy` uses by default.
pub(crate) fn default_name(reference: &Reference) -> &str {
    reference
        .repository()
        .rsplit('/')
        .next()
        .unwrap_or_default()
}

impl RegistryArgs {
    /// Credentials from `WASMOUNT_REGISTRY_USER`/`_PASSWORD` (else the Docker config file).
    pub(crate) fn from_env(plain_http: bool) -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Self {
            registry_user: var("WASMOUNT_REGISTRY_USER"),
            registry_password: var("WASMOUNT_REGISTRY_PASSWORD"),
            plain_http,
        }
    }
}

fn client(args: &RegistryArgs) -> Client {
    // reqwest's rustls needs a process-wide provider: ring, as the rest of the server.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let protocol = if args.plain_http {
        ClientProtocol::Http
    } else {
        ClientProtocol::Https
    };
    Client::new(ClientConfig {
        protocol,
        ..ClientConfig::default()
    })
}

/// A component pulled from a registry.
pub(crate) struct Pulled {
    /// The component's bytes, their digest checked.
    pub bytes: Vec<u8>,
    /// The manifest's digest (`sha256:…`).
    pub digest: String,
}

/// Pulls the component at `reference`.
///
/// # Errors
///
/// The registry cannot be reached or refuses; the manifest is not a wasm component's (its
/// media types, or not exactly one layer); a digest does not match.
pub(crate) async fn pull(reference: &Reference, args: &RegistryArgs) -> anyhow::Result<Pulled> {
    let client = client(args);
    let auth = auth_for(reference.resolve_registry(), args)?;
    let (manifest, digest, _config) = client
        .pull_manifest_and_config(reference, &auth)
        .await
        .with_context(|| format!("pulling the manifest of {reference}"))?;
    let layer = component_layer(&manifest)
        .with_context(|| format!("{reference} is not a wasm component"))?;
    let bytes = pull_layer(&client, reference, layer).await?;
    Ok(Pulled { bytes, digest })
}

/// The layer's bytes, never more than it declares (nor [`MAX_PULL_BYTES`]), its sha256
/// digest checked.
async fn pull_layer(
    client: &Client,
    reference: &Reference,
    layer: &OciDescriptor,
) -> anyhow::Result<Vec<u8>> {
    use futures::StreamExt as _;
    let expected = layer
        .digest
        .strip_prefix("sha256:")
        .with_context(|| format!("{reference}: layer digest {} is not sha256", layer.digest))?;
    let declared = u64::try_from(layer.size).unwrap_or(0);
    anyhow::ensure!(
        declared <= MAX_PULL_BYTES,
        "{reference}: the component is {declared} bytes, more than wasmount pulls ({MAX_PULL_BYTES})"
    );
    let mut stream = client
        .pull_blob_stream(reference, layer)
        .await
        .with_context(|| format!("pulling the component of {reference} ({})", layer.digest))?;
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.with_context(|| format!("pulling the component of {reference}"))?;
        anyhow::ensure!(
            (bytes.len() + chunk.len()) as u64 <= declared,
            "{reference}: the registry sent more than the {declared} bytes the manifest declares"
        );
        bytes.extend_from_slice(&chunk);
    }
    let actual = crate::client::sha256_hex(&bytes);
    anyhow::ensure!(
        actual == expected,
        "{reference}: digest mismatch: the component is sha256:{actual}, the manifest says {}",
        layer.digest
    );
    Ok(bytes)
}

/// The one layer holding the component, or why there is none.
fn component_layer(manifest: &OciImageManifest) -> anyhow::Result<&OciDescriptor> {
    let config = manifest.config.media_type.as_str();
    let expected = if config == WASM_CONFIG {
        WASM_LAYER
    } else {
        WASM_CONTENT_LAYER
    };
    let kinds: Vec<&str> = manifest
        .layers
        .iter()
        .map(|l| l.media_type.as_str())
        .collect();
    match manifest.layers.as_slice() {
        [layer] if layer.media_type == expected => Ok(layer),
        _ => anyhow::bail!(
            "config {config}, layers {kinds:?}: expected one {expected} layer (the wasm OCI \
             artifact: config {WASM_CONFIG} with one {WASM_LAYER} layer, or one \
             {WASM_CONTENT_LAYER} layer)"
        ),
    }
}

/// `wasmount push FILE oci://…`.
#[derive(Debug, Clone, Args)]
pub(crate) struct PushArgs {
    /// The component (`.wasm`) to publish.
    file: PathBuf,

    /// Where: `oci://HOST[:PORT]/REPO:TAG`.
    target: String,

    #[command(flatten)]
    registry: RegistryArgs,
}

/// Publishes a component in the wasm artifact layout and prints its digest.
///
/// # Errors
///
/// The file is not a component, the target not an `oci://` reference, or the registry refuses.
pub(crate) async fn push(args: PushArgs) -> anyhow::Result<()> {
    let reference = reference_of(&args.target)
        .with_context(|| format!("`{}` is not an oci:// address", args.target))??;
    let bytes = read_component(&args.file)?;
    let digest = format!("sha256:{}", crate::client::sha256_hex(&bytes));
    let config = serde_json::json!({
        "architecture": "wasm",
        "os": "wasip2",
        "layerDigests": [digest],
        "created": humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
    });
    let config = Config {
        data: serde_json::to_vec(&config)?.into(),
        media_type: WASM_CONFIG.to_owned(),
        annotations: None,
    };
    let size = bytes.len();
    let layers = [ImageLayer::new(bytes, WASM_LAYER.to_owned(), None)];
    let manifest = OciImageManifest::build(&layers, &config, None);
    let client = client(&args.registry);
    let auth = auth_for(reference.resolve_registry(), &args.registry)?;
    let pushed = client
        .push(&reference, &layers, config, &auth, Some(manifest))
        .await
        .with_context(|| format!("pushing to {reference}"))?;
    let manifest_digest = pushed
        .manifest_url
        .rsplit('/')
        .next()
        .filter(|last| last.starts_with("sha256:"))
        .map(str::to_owned);
    let manifest_digest = match manifest_digest {
        Some(digest) => digest,
        None => client
            .fetch_manifest_digest(&reference, &auth)
            .await
            .with_context(|| format!("reading back the digest of {reference}"))?,
    };
    println!(
        "pushed {} ({size} bytes, layer {digest}) to {SCHEME}{reference}\n\
         pinned: {SCHEME}{}/{}@{manifest_digest}",
        args.file.display(),
        reference.registry(),
        reference.repository(),
    );
    Ok(())
}

/// The file's bytes, if it looks like a component (the server checks it fully).
fn read_component(path: &Path) -> anyhow::Result<Vec<u8>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    anyhow::ensure!(
        bytes.starts_with(b"\0asm"),
        "{} is not a WebAssembly file (no `\\0asm` magic bytes)",
        path.display()
    );
    Ok(bytes)
}

/// Credentials for `registry`: the flags, else the Docker config file's `auths` entry, else
/// none.
fn auth_for(registry: &str, args: &RegistryArgs) -> anyhow::Result<RegistryAuth> {
    if let (Some(user), Some(password)) = (&args.registry_user, &args.registry_password) {
        return Ok(RegistryAuth::Basic(user.clone(), password.clone()));
    }
    if args.plain_http {
        // The Docker config's secrets never travel in clear text.
        return Ok(RegistryAuth::Anonymous);
    }
    Ok(docker_config_auth(registry)?.unwrap_or(RegistryAuth::Anonymous))
}

/// `$DOCKER_CONFIG/config.json` (default `~/.docker/config.json`): the `auth` of `registry`.
fn docker_config_auth(registry: &str) -> anyhow::Result<Option<RegistryAuth>> {
    let folder = match std::env::var_os("DOCKER_CONFIG") {
        Some(folder) => PathBuf::from(folder),
        None => match std::env::var_os("HOME") {
            Some(home) => PathBuf::from(home).join(".docker"),
            None => return Ok(None),
        },
    };
    let path = folder.join("config.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    let config: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))?;
    let auths = &config["auths"];
    let entry = [
        registry.to_owned(),
        format!("https://{registry}"),
        format!("http://{registry}"),
    ]
    .iter()
    .find_map(|key| auths[key.as_str()]["auth"].as_str().map(str::to_owned));
    let Some(encoded) = entry else {
        return Ok(None);
    };
    use base64::Engine as _;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .with_context(|| format!("{}: the auth of {registry} is not base64", path.display()))?;
    let decoded = String::from_utf8(decoded)
        .with_context(|| format!("{}: the auth of {registry} is not text", path.display()))?;
    let (user, password) = decoded.split_once(':').with_context(|| {
        format!(
            "{}: the auth of {registry} is not USER:PASSWORD",
            path.display()
        )
    })?;
    Ok(Some(RegistryAuth::Basic(
        user.to_owned(),
        password.to_owned(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(config: &str, layers: &[&str]) -> OciImageManifest {
        let mut manifest = OciImageManifest::default();
        manifest.config.media_type = config.to_owned();
        manifest.layers = layers
            .iter()
            .map(|kind| OciDescriptor {
                media_type: (*kind).to_owned(),
                ..OciDescriptor::default()
            })
            .collect();
        manifest
    }

    #[test]
    fn only_the_two_wasm_layouts_are_taken() {
        assert!(component_layer(&manifest(WASM_CONFIG, &[WASM_LAYER])).is_ok());
        let oras = "application/vnd.unknown.config.v1+json";
        assert!(component_layer(&manifest(oras, &[WASM_CONTENT_LAYER])).is_ok());
        assert!(component_layer(&manifest(WASM_CONFIG, &[WASM_LAYER, WASM_LAYER])).is_err());
        assert!(component_layer(&manifest(WASM_CONFIG, &[])).is_err());
        let image = "application/vnd.oci.image.layer.v1.tar+gzip";
        let refused = component_layer(&manifest(oras, &[image])).unwrap_err();
        assert!(refused.to_string().contains(image), "{refused}");
    }

    #[test]
    fn oci_addresses_are_references_and_name_the_app() {
        let reference = reference_of("oci://127.0.0.1:5000/team/heatmap:1.2")
            .unwrap()
            .unwrap();
        assert_eq!(reference.registry(), "127.0.0.1:5000");
        assert_eq!(default_name(&reference), "heatmap");
        assert!(reference_of("heatmap.wasm").is_none());
        assert!(reference_of("oci://").unwrap().is_err());
    }
}
