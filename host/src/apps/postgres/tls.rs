//! TLS to the store, as a libpq URL asks for it: `sslmode` `disable`, `prefer` (the default:
//! TLS when the server offers it, unverified), `require` (TLS, unverified — or verified
//! against `sslrootcert` when given, as libpq does), `verify-ca` (the chain) and
//! `verify-full` (the chain and the host name), against `sslrootcert` (a PEM file) or the
//! Mozilla roots. rustls on ring.

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use std::sync::Arc;
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

/// What a URL asks of the connection's TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TlsSettings {
    /// `sslmode`, as libpq spells it.
    pub mode: String,
    /// `sslrootcert`: a PEM file of the roots to trust.
    pub root_cert: Option<String>,
}

impl TlsSettings {
    /// Takes `sslmode` and `sslrootcert` out of `url` (the driver knows neither `verify-*` nor
    /// `sslrootcert`); returns the URL without them and the settings.
    ///
    /// # Errors
    ///
    /// An `sslmode` libpq does not know.
    pub(super) fn split_from(url: &str) -> Result<(String, Self), String> {
        let mut settings = Self {
            mode: "prefer".into(),
            root_cert: None,
        };
        let (base, Some(query)) = super::split_query(url) else {
            return Ok((url.to_owned(), settings));
        };
        let mut kept = Vec::new();
        for parameter in query.split('&') {
            match parameter.split_once('=') {
                Some(("sslmode", mode)) => settings.mode = mode.to_owned(),
                Some(("sslrootcert", path)) => settings.root_cert = Some(path.to_owned()),
                _ => kept.push(parameter),
            }
        }
        let known = [
            "disable",
            "allow",
            "prefer",
            "require",
            "verify-ca",
            "verify-full",
        ];
        if !known.contains(&settings.mode.as_str()) {
            return Err(format!(
                "sslmode={} is not one of {}",
                settings.mode,
                known.join(", ")
            ));
        }
        if settings.mode == "verify-ca" && settings.root_cert.is_none() {
            // As libpq: a chain check against every public root, without the host name,
            // would accept any publicly trusted certificate.
            return Err("sslmode=verify-ca needs sslrootcert=FILE".into());
        }
        let url = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        Ok((url, settings))
    }

    /// The driver's mode: whether TLS is tried, and whether it must be had.
    pub(super) fn driver_mode(&self) -> SslMode {
        match self.mode.as_str() {
            "disable" => SslMode::Disable,
            "allow" | "prefer" => SslMode::Prefer,
            _ => SslMode::Require,
        }
    }

    /// The TLS connector these settings call for.
    ///
    /// # Errors
    ///
    /// `sslrootcert` cannot be read or holds no certificate.
    pub(super) fn connector(&self) -> Result<MakeRustlsConnect, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verified = |provider: &Arc<CryptoProvider>| {
            WebPkiServerVerifier::builder_with_provider(Arc::new(self.roots()?), provider.clone())
                .build()
                .map_err(|e| format!("TLS to the store: {e}"))
        };
        let verifier: Arc<dyn ServerCertVerifier> = match (self.mode.as_str(), &self.root_cert) {
            ("verify-full", _) => verified(&provider)?,
            ("verify-ca", _) | ("require", Some(_)) => Arc::new(Lenient {
                chain: Some(verified(&provider)?),
                provider: provider.clone(),
            }),
            // libpq's prefer and require: encrypted, not verified.
            _ => Arc::new(Lenient {
                chain: None,
                provider: provider.clone(),
            }),
        };
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS to the store: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(MakeRustlsConnect::new(config))
    }

    /// The roots to verify against: `sslrootcert`, or the Mozilla roots.
    fn roots(&self) -> Result<rustls::RootCertStore, String> {
        let mut roots = rustls::RootCertStore::empty();
        let Some(path) = &self.root_cert else {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            return Ok(roots);
        };
        let unreadable = |e: &dyn std::fmt::Display| format!("sslrootcert {path}: {e}");
        for certificate in CertificateDer::pem_file_iter(path).map_err(|e| unreadable(&e))? {
            let certificate = certificate.map_err(|e| unreadable(&e))?;
            roots.add(certificate).map_err(|e| unreadable(&e))?;
        }
        if roots.is_empty() {
            return Err(unreadable(&"no certificate in it"));
        }
        Ok(roots)
    }
}

/// libpq's `prefer` and `require` (no `chain`: encrypted, the server not verified) and
/// `verify-ca` (the chain must lead to a trusted root; the host name is not checked).
#[derive(Debug)]
struct Lenient {
    provider: Arc<CryptoProvider>,
    chain: Option<Arc<WebPkiServerVerifier>>,
}

impl ServerCertVerifier for Lenient {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        let verified =
            chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now);
        match verified {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssl_settings_are_taken_out_of_the_url() {
        let url = "postgres://u@h/d?sslmode=verify-full&application_name=x&sslrootcert=/ca.pem";
        let (rest, settings) = TlsSettings::split_from(url).unwrap();
        assert_eq!(rest, "postgres://u@h/d?application_name=x");
        assert_eq!(settings.mode, "verify-full");
        assert_eq!(settings.root_cert.as_deref(), Some("/ca.pem"));
        assert_eq!(settings.driver_mode(), SslMode::Require);
        let (rest, settings) = TlsSettings::split_from("postgres://u@h/d").unwrap();
        assert_eq!(
            (rest.as_str(), settings.mode.as_str()),
            ("postgres://u@h/d", "prefer")
        );
        assert!(TlsSettings::split_from("postgres://u@h/d?sslmode=always").is_err());
        assert!(TlsSettings::split_from("postgres://u@h/d?sslmode=verify-ca").is_err());
        let (rest, settings) =
            TlsSettings::split_from("postgres://u:p?w@h/d?sslmode=require").unwrap();
        assert_eq!(
            (rest.as_str(), settings.mode.as_str()),
            ("postgres://u:p?w@h/d", "require")
        );
        let missing = TlsSettings::split_from("postgres://u@h/d?sslmode=verify-ca&sslrootcert=/no")
            .unwrap()
            .1
            .connector()
            .err()
            .unwrap();
        assert!(missing.contains("sslrootcert /no"), "{missing}");
    }
}
