//! HTTPS for the listeners: rustls, HTTP/2 and HTTP/1.1 offered by ALPN, and the certificate
//! and key re-read when their files change or on SIGHUP — new handshakes get the new pair,
//! open connections keep theirs, so a certbot-style renewal needs no restart.

use crate::config::TlsFiles;
use anyhow::Context as _;
use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio_rustls::TlsAcceptor;

/// How often the files are checked for a change.
const RELOAD_CHECK_INTERVAL: Duration = Duration::from_secs(2);

/// The protocols offered, preferred first.
const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// The TLS side of every listener of one server.
pub(crate) struct Tls {
    acceptor: TlsAcceptor,
    current: Arc<CurrentKey>,
}

impl Tls {
    /// Reads `files` and sets up rustls.
    ///
    /// # Errors
    ///
    /// A file that cannot be read, holds no certificate or key, or a key that does not
    /// belong to the certificate.
    pub(crate) fn load(files: &TlsFiles) -> anyhow::Result<Arc<Self>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = certified_key(files, &provider)?;
        let current = Arc::new(CurrentKey {
            key: ArcSwap::from_pointee(key),
            files: files.clone(),
            provider: provider.clone(),
            seen: Mutex::new(fingerprint(files)),
        });
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("setting up TLS")?
            .with_no_client_auth()
            .with_cert_resolver(current.clone());
        config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
        let acceptor = TlsAcceptor::from(Arc::new(config));
        Ok(Arc::new(Self { acceptor, current }))
    }

    /// The acceptor for new connections.
    pub(crate) fn acceptor(&self) -> &TlsAcceptor {
        &self.acceptor
    }

    /// Re-reads the files when they change (checked every 2 s) or on SIGHUP, until the task
    /// is aborted.
    pub(crate) fn spawn_reloader(&self) -> tokio::task::JoinHandle<()> {
        let current = self.current.clone();
        tokio::spawn(async move {
            let mut hangups = hangup_signals();
            let mut ticks = tokio::time::interval(RELOAD_CHECK_INTERVAL);
            loop {
                let forced = tokio::select! {
                    _ = ticks.tick() => false,
                    Some(()) = next_hangup(&mut hangups) => true,
                };
                current.reload_if_changed(forced);
            }
        })
    }
}

/// The pair handshakes get now.
#[derive(Debug)]
struct CurrentKey {
    key: ArcSwap<CertifiedKey>,
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    /// The files' identity when last read, so each change is read (and reported) once.
    seen: Mutex<Fingerprint>,
}

impl ResolvesServerCert for CurrentKey {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.key.load_full())
    }
}

impl CurrentKey {
    /// Reads the files again if they changed since last time, or if `forced`; a pair that
    /// does not load is reported and the current one kept.
    fn reload_if_changed(&self, forced: bool) {
        let now = fingerprint(&self.files);
        {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            if *seen == now && !forced {
                return;
            }
            *seen = now;
        }
        match certified_key(&self.files, &self.provider) {
            Ok(key) => {
                self.key.store(Arc::new(key));
                tracing::info!(
                    cert = %self.files.cert.display(),
                    "TLS certificate reloaded: new connections use it"
                );
            }
            Err(error) => {
                tracing::warn!("TLS certificate not reloaded, keeping the current one: {error:#}")
            }
        }
    }
}

/// Size, modification time and inode of both files (following symbolic links, as certbot's
/// `live/` folder uses them); `None` where a file cannot be read.
type Fingerprint = [Option<(u64, SystemTime, u64)>; 2];

fn fingerprint(files: &TlsFiles) -> Fingerprint {
    use std::os::unix::fs::MetadataExt as _;
    let of = |path: &std::path::Path| {
        let meta = std::fs::metadata(path).ok()?;
        Some((meta.len(), meta.modified().ok()?, meta.ino()))
    };
    [of(&files.cert), of(&files.key)]
}

/// The certificate chain and key of `files`, checked to belong together.
fn certified_key(files: &TlsFiles, provider: &CryptoProvider) -> anyhow::Result<CertifiedKey> {
    let cert_path = files.cert.display();
    let chain = CertificateDer::pem_file_iter(&files.cert)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .with_context(|| format!("reading the TLS certificate {cert_path}"))?;
    anyhow::ensure!(
        !chain.is_empty(),
        "the TLS certificate {cert_path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
    );
    let key_path = files.key.display();
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .with_context(|| format!("reading the TLS key {key_path} (PEM: PKCS#8, PKCS#1 or SEC1)"))?;
    let key = CertifiedKey::from_der(chain, key, provider).with_context(|| {
        format!("the TLS key {key_path} does not belong to the certificate {cert_path}")
    })?;
    Ok(key)
}

type Hangups = Option<tokio::signal::unix::Signal>;

fn hangup_signals() -> Hangups {
    use tokio::signal::unix::{SignalKind, signal};
    signal(SignalKind::hangup())
        .map_err(|error| tracing::warn!("cannot watch SIGHUP: {error}"))
        .ok()
}

async fn next_hangup(hangups: &mut Hangups) -> Option<()> {
    match hangups {
        Some(signals) => signals.recv().await,
        None => std::future::pending().await,
    }
}
