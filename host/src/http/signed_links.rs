//! Signed links, for platforms that would rather not be called on every request: a launch
//! with `"access": "link"` opens only with a token the server signed — HMAC-SHA256 over the
//! launch's name, its creation (so a relaunch under the same name does not inherit links)
//! and an expiry. The link's first visit (`?wasmount-link=TOKEN`) sets a cookie scoped to
//! the launch's prefix holding a session token, and redirects to the clean URL; without a
//! valid cookie or link the launch answers 401. Keys come from `--link-keys` (one base64
//! key per line, the first signs, all verify: add a key, then drop the old one) so every
//! node of a cluster given the same file accepts the same links.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac as _};
use sha2::Sha256;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The query parameter a link carries its token in.
pub(crate) const LINK_PARAM: &str = "wasmount-link";

/// How long a link opens its launch.
pub(crate) const LINK_TTL: Duration = Duration::from_secs(15 * 60);

/// How long the cookie a link leaves keeps the launch open in that browser.
pub(crate) const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);

/// The shortest key accepted, in bytes.
const MIN_KEY_BYTES: usize = 32;

/// The keys links are signed and checked with.
#[derive(Clone)]
pub(crate) struct LinkKeys(Vec<Vec<u8>>);

impl std::fmt::Debug for LinkKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LinkKeys({} keys)", self.0.len()) // never the keys themselves
    }
}

/// What a link or cookie is for: the launch, and when it was made.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LinkSubject<'a> {
    /// The launch's name.
    pub launch: &'a str,
    /// Its creation, in milliseconds since the epoch.
    pub created_ms: u64,
}

impl LinkKeys {
    /// The keys of `file`: one base64 key of at least 32 bytes per line (`#` comments).
    ///
    /// # Errors
    ///
    /// The file cannot be read, holds no key, or a line is not such a key (its number named).
    pub(crate) fn load(file: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(file)
            .map_err(|e| anyhow::anyhow!("reading the link keys {}: {e}", file.display()))?;
        let mut keys = Vec::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let key = base64::engine::general_purpose::STANDARD
                .decode(line)
                .ok()
                .filter(|key| key.len() >= MIN_KEY_BYTES);
            let Some(key) = key else {
                anyhow::bail!(
                    "{} line {}: not a base64 key of at least {MIN_KEY_BYTES} bytes \
                     (make one with `head -c 32 /dev/urandom | base64`)",
                    file.display(),
                    number + 1
                );
            };
            keys.push(key);
        }
        anyhow::ensure!(!keys.is_empty(), "{}: no link key in it", file.display());
        Ok(Self(keys))
    }

    /// One random key of this process's (links die with it; a cluster needs `--link-keys`).
    ///
    /// # Errors
    ///
    /// The OS random source failed.
    pub(crate) fn generated() -> Result<Self, getrandom::Error> {
        let mut key = vec![0u8; MIN_KEY_BYTES];
        getrandom::fill(&mut key)?;
        Ok(Self(vec![key]))
    }

    /// A token for `subject` valid until `expires`.
    pub(crate) fn sign(&self, subject: LinkSubject<'_>, expires: SystemTime) -> String {
        let expires_ms = millis(expires);
        let mac = mac(&self.0[0], subject, expires_ms).finalize().into_bytes();
        format!("{expires_ms}.{}", URL_SAFE_NO_PAD.encode(mac))
    }

    /// Whether `token` is one of ours for `subject`, and not expired at `now`.
    pub(crate) fn verify(&self, subject: LinkSubject<'_>, token: &str, now: SystemTime) -> bool {
        let Some((expires, signature)) = token.split_once('.') else {
            return false;
        };
        let (Ok(expires_ms), Ok(signature)) =
            (expires.parse::<u64>(), URL_SAFE_NO_PAD.decode(signature))
        else {
            return false;
        };
        expires_ms > millis(now)
            && self.0.iter().any(|key| {
                mac(key, subject, expires_ms)
                    .verify_slice(&signature)
                    .is_ok()
            })
    }
}

fn mac(key: &[u8], subject: LinkSubject<'_>, expires_ms: u64) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    let signed = format!("{}\n{}\n{expires_ms}", subject.launch, subject.created_ms);
    mac.update(signed.as_bytes());
    mac
}

fn millis(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64)
}

/// The cookie that keeps launch `launch` open in a browser.
pub(crate) fn cookie_name(launch: &str) -> String {
    format!("wasmount-link-{launch}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUBJECT: LinkSubject<'static> = LinkSubject {
        launch: "viz-abc",
        created_ms: 1_000,
    };

    #[test]
    fn a_signed_token_opens_its_launch_until_it_expires() {
        let keys = LinkKeys::generated().unwrap();
        let now = SystemTime::now();
        let token = keys.sign(SUBJECT, now + LINK_TTL);
        assert!(keys.verify(SUBJECT, &token, now));
        assert!(!keys.verify(SUBJECT, &token, now + LINK_TTL + Duration::from_secs(1)));
        let other = LinkSubject {
            launch: "viz-xyz",
            ..SUBJECT
        };
        assert!(!keys.verify(other, &token, now), "another launch");
        let relaunched = LinkSubject {
            created_ms: 2_000,
            ..SUBJECT
        };
        assert!(
            !keys.verify(relaunched, &token, now),
            "a relaunch under the same name"
        );
        let (expires, signature) = token.split_once('.').unwrap();
        let later: u64 = expires.parse::<u64>().unwrap() + 3_600_000;
        assert!(
            !keys.verify(SUBJECT, &format!("{later}.{signature}"), now),
            "forged expiry"
        );
        assert!(
            !LinkKeys::generated().unwrap().verify(SUBJECT, &token, now),
            "another key"
        );
        assert!(!keys.verify(SUBJECT, "garbage", now));
    }

    #[test]
    fn rotation_verifies_with_every_key_and_signs_with_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let (old, new) = ([1u8; 32], [2u8; 32]);
        let engine = base64::engine::general_purpose::STANDARD;
        let file = dir.path().join("keys");
        std::fs::write(&file, format!("# old\n{}\n", engine.encode(old))).unwrap();
        let before = LinkKeys::load(&file).unwrap();
        let now = SystemTime::now();
        let token = before.sign(SUBJECT, now + LINK_TTL);
        std::fs::write(
            &file,
            format!("{}\n{}\n", engine.encode(new), engine.encode(old)),
        )
        .unwrap();
        let during = LinkKeys::load(&file).unwrap();
        assert!(during.verify(SUBJECT, &token, now), "old links still open");
        std::fs::write(&file, format!("{}\n", engine.encode(new))).unwrap();
        assert!(
            !LinkKeys::load(&file).unwrap().verify(SUBJECT, &token, now),
            "old key dropped"
        );
        std::fs::write(&file, "c2hvcnQ=\n").unwrap();
        assert!(
            LinkKeys::load(&file)
                .unwrap_err()
                .to_string()
                .contains("line 1")
        );
    }
}
