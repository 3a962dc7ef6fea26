//! The apps a config file declares (`[apps.NAME]`), made ready at start: a file mounted where
//! it is, or — with settings inline, or from a registry — materialized in the cache folder
//! (`declared/NAME.wasm` beside its `NAME.toml`). Registry pulls are cached by digest: a
//! pinned reference already pulled needs no registry, and a tag whose registry cannot be
//! reached falls back to the version last pulled for it, saying so.

use super::config_file::{DeclaredApp, DeclaredSource};
use super::oci::{self, RegistryArgs};
use crate::apps::store::write_atomically;
use anyhow::Context as _;
use std::path::{Path, PathBuf};

/// `(name, component path)` for each declared app, ready to mount.
///
/// # Errors
///
/// A file cannot be copied, or a registry component can be neither pulled nor found in the
/// cache.
pub(crate) async fn prepare(
    apps: &[DeclaredApp],
    cache: &Path,
) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let declared = cache.join("declared");
    let mut ready = Vec::new();
    for app in apps {
        let path = match (&app.source, &app.manifest) {
            (DeclaredSource::Path(path), None) => path.clone(),
            (DeclaredSource::Path(path), Some(_)) => {
                let bytes = std::fs::read(path)
                    .with_context(|| format!("app `{}`: reading {}", app.name, path.display()))?;
                materialize(&declared, app, &bytes)?
            }
            (
                DeclaredSource::Oci {
                    reference,
                    plain_http,
                },
                _,
            ) => {
                let bytes = pulled(reference, *plain_http, &cache.join("oci")).await?;
                materialize(&declared, app, &bytes)?
            }
        };
        ready.push((app.name.clone(), path));
    }
    Ok(ready)
}

/// Writes the component and its settings into `folder`; the component's path.
fn materialize(folder: &Path, app: &DeclaredApp, bytes: &[u8]) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(folder).with_context(|| format!("creating {}", folder.display()))?;
    let component = folder.join(format!("{}.wasm", app.name));
    let manifest = folder.join(format!("{}.toml", app.name));
    match &app.manifest {
        Some(text) => write_atomically(folder, &manifest, text.as_bytes())?,
        None => match std::fs::remove_file(&manifest) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error.into()),
            _ => {}
        },
    }
    write_atomically(folder, &component, bytes)?;
    Ok(component)
}

/// The component at `reference`: from the cache when pinned and already pulled, else pulled
/// (and cached), else — the registry unreachable — the version last pulled for it.
async fn pulled(reference: &str, plain_http: bool, cache: &Path) -> anyhow::Result<Vec<u8>> {
    let address = format!("{}{reference}", oci::SCHEME);
    let parsed = oci::reference_of(&address).expect("an oci:// address")?;
    let by_digest = |digest: &str| cache.join(format!("{}.wasm", digest.replace(':', "-")));
    if let Some(digest) = parsed.digest()
        && let Ok(bytes) = std::fs::read(by_digest(digest))
    {
        return Ok(bytes);
    }
    let last = cache.join("refs").join(format!(
        "{}.digest",
        crate::client::sha256_hex(reference.as_bytes())
    ));
    match oci::pull(&parsed, &RegistryArgs::from_env(plain_http)).await {
        Ok(pulled) => {
            std::fs::create_dir_all(last.parent().unwrap_or(cache))?;
            write_atomically(cache, &by_digest(&pulled.digest), &pulled.bytes)?;
            write_atomically(
                last.parent().unwrap_or(cache),
                &last,
                pulled.digest.as_bytes(),
            )?;
            tracing::info!(reference, digest = %pulled.digest, "pulled");
            Ok(pulled.bytes)
        }
        Err(error) => {
            let cached = std::fs::read_to_string(&last)
                .ok()
                .and_then(|digest| std::fs::read(by_digest(digest.trim())).ok());
            let Some(bytes) = cached else {
                return Err(error.context(format!("pulling {address} (nothing cached for it)")));
            };
            tracing::warn!(
                reference,
                "pulling failed, serving the version last pulled: {error:#}"
            );
            Ok(bytes)
        }
    }
}
