//! The control plane's tokens: named, each with its scopes (`deploy`: upload, replace and
//! delete apps; `launch`: launch and end; `read`: list and inspect, inputs, metrics, guest
//! output), from `--admin-token` (named `admin`, every scope) and a tokens file
//! (`--tokens-file`) that is re-read when its content changes or on SIGHUP — a token removed from it
//! stops working at once. Tokens are kept only as SHA-256 digests and compared in constant
//! time.

use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use subtle::ConstantTimeEq as _;

/// How often the tokens file is checked for a change.
const RELOAD_EVERY: Duration = Duration::from_secs(1);

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Scope {
    /// Upload, replace and delete apps.
    Deploy,
    /// Launch apps and end launches.
    Launch,
    /// List and inspect apps and launches (inputs included), metrics, guest output.
    Read,
}

impl Scope {
    fn name(self) -> &'static str {
        match self {
            Self::Deploy => "deploy",
            Self::Launch => "launch",
            Self::Read => "read",
        }
    }
}

/// One token, as kept.
#[derive(Debug, Clone)]
struct Token {
    name: Arc<str>,
    digest: [u8; 32],
    scopes: Vec<Scope>,
}

/// The tokens in force now.
#[derive(Debug, Clone, Default)]
pub(crate) struct TokenSet(Vec<Token>);

/// Why a bearer token is refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TokenRefusal {
    /// No token is configured at all.
    Closed,
    /// None was sent.
    Missing,
    /// It is no token in force.
    Wrong,
    /// It is, and lacks the scope.
    Lacks {
        /// The token's name.
        name: Arc<str>,
        /// The scope asked for.
        scope: &'static str,
    },
}

/// The tokens file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensFile {
    #[serde(default)]
    tokens: BTreeMap<String, TokenEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    /// The token itself (at least 16 characters), or
    token: Option<String>,
    /// its SHA-256 in hex, so the file need not hold it.
    sha256: Option<String>,
    scopes: Vec<Scope>,
}

impl TokenSet {
    /// `admin` (every scope) from `--admin-token`, if given, and the file's tokens.
    ///
    /// # Errors
    ///
    /// The file cannot be read or is invalid: a message naming the token and what is wrong.
    pub(crate) fn load(admin: Option<&str>, file: Option<&Path>) -> anyhow::Result<Self> {
        let mut tokens = Vec::new();
        if let Some(admin) = admin {
            anyhow::ensure!(
                admin.trim().len() >= 16,
                "the admin token is {} characters, at least 16 are needed",
                admin.trim().len()
            );
            let scopes = vec![Scope::Deploy, Scope::Launch, Scope::Read];
            tokens.push(Token {
                name: "admin".into(),
                digest: digest(admin.trim()),
                scopes,
            });
        }
        if let Some(file) = file {
            let text = std::fs::read_to_string(file)
                .map_err(|e| anyhow::anyhow!("reading the tokens file {}: {e}", file.display()))?;
            let named = parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            // A file caught half written (or emptied) must not lock everyone out.
            anyhow::ensure!(!named.is_empty(), "{}: holds no token", file.display());
            tokens.extend(named);
        }
        for (at, token) in tokens.iter().enumerate() {
            if let Some(twin) = tokens[..at].iter().find(|t| t.digest == token.digest) {
                anyhow::bail!(
                    "tokens `{}` and `{}` are the same token",
                    twin.name,
                    token.name
                );
            }
        }
        Ok(Self(tokens))
    }

    /// The name of the token `given` (a bearer token) if it holds `scope`.
    pub(crate) fn allow(
        &self,
        given: Option<&str>,
        scope: Scope,
    ) -> Result<Arc<str>, TokenRefusal> {
        if self.0.is_empty() {
            return Err(TokenRefusal::Closed);
        }
        let given = digest(given.ok_or(TokenRefusal::Missing)?);
        // Every token is compared, so the time taken does not tell which one matched.
        let found = self.0.iter().fold(None, |found, token| {
            let equal = bool::from(token.digest.ct_eq(&given));
            if equal { Some(token) } else { found }
        });
        let token = found.ok_or(TokenRefusal::Wrong)?;
        if token.scopes.contains(&scope) {
            Ok(token.name.clone())
        } else {
            let (name, scope) = (token.name.clone(), scope.name());
            Err(TokenRefusal::Lacks { name, scope })
        }
    }
}

fn digest(token: &str) -> [u8; 32] {
    digest_bytes(token.as_bytes())
}

fn digest_bytes(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn parse(text: &str) -> Result<Vec<Token>, String> {
    let file: TokensFile = toml::from_str(text).map_err(|e| {
        // The parser's message quotes the line, which may hold a token.
        let at = e
            .span()
            .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
        format!("not valid at line {}", at.unwrap_or(0))
    })?;
    file.tokens
        .into_iter()
        .map(|(name, entry)| {
            let digest = match (entry.token, entry.sha256) {
                (Some(token), None) if token.trim().len() >= 16 => digest(token.trim()),
                (Some(_), None) => {
                    return Err(format!("token `{name}` is shorter than 16 characters"));
                }
                (None, Some(hex)) => {
                    from_hex(&hex).ok_or(format!("token `{name}`: sha256 is not 64 hex digits"))?
                }
                _ => {
                    return Err(format!(
                        "token `{name}`: give exactly one of `token` and `sha256`"
                    ));
                }
            };
            if entry.scopes.is_empty() {
                return Err(format!(
                    "token `{name}` has no scopes (deploy, launch, read)"
                ));
            }
            Ok(Token {
                name: name.into(),
                digest,
                scopes: entry.scopes,
            })
        })
        .collect()
}

fn from_hex(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim();
    if hex.len() != 64 {
        return None;
    }
    let mut bytes = [0u8; 32];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(bytes)
}

/// Re-reads the tokens file when it changes (checked every second) or on SIGHUP, and hands
/// each valid set to `apply`; an invalid file is logged and the tokens in force stay.
pub(crate) fn spawn_reloader(
    admin: Option<String>,
    file: PathBuf,
    apply: impl Fn(TokenSet) + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        // By content, not modification time: two edits in one clock tick are both seen.
        let fingerprint = |file: &Path| std::fs::read(file).ok().map(|bytes| digest_bytes(&bytes));
        let mut seen = fingerprint(&file);
        let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .map_err(|error| tracing::warn!("cannot watch SIGHUP for the tokens file: {error}"))
            .ok();
        loop {
            let hangup = async {
                match &mut hangups {
                    Some(hangups) => hangups.recv().await,
                    None => std::future::pending().await,
                }
            };
            let asked = tokio::select! {
                _ = hangup => true,
                () = tokio::time::sleep(RELOAD_EVERY) => false,
            };
            let now = fingerprint(&file);
            if !asked && now == seen {
                continue;
            }
            seen = now;
            match TokenSet::load(admin.as_deref(), Some(&file)) {
                Ok(tokens) => {
                    let count = tokens.0.len();
                    apply(tokens);
                    tracing::info!(tokens = count, "tokens file re-read: {}", file.display());
                }
                Err(error) => {
                    tracing::error!("tokens file not applied, the tokens in force stay: {error:#}")
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
        [tokens.refinery]
        token = "launch-only-token-0123"
        scopes = ["launch"]
        [tokens.dashboard]
        sha256 = "8e2a9b1e8b2a6d0f0f8e6a3f5b2b7d1c4e9f0a1b2c3d4e5f60718293a4b5c6d7"
        scopes = ["read"]
    "#;

    #[test]
    fn each_token_may_do_what_its_scopes_say() {
        let set = TokenSet(parse(FILE).unwrap());
        assert_eq!(
            set.allow(Some("launch-only-token-0123"), Scope::Launch)
                .as_deref(),
            Ok("refinery")
        );
        assert_eq!(
            set.allow(Some("launch-only-token-0123"), Scope::Deploy),
            Err(TokenRefusal::Lacks {
                name: "refinery".into(),
                scope: "deploy"
            })
        );
        assert_eq!(
            set.allow(Some("nope-nope-nope-nope"), Scope::Read),
            Err(TokenRefusal::Wrong)
        );
        assert_eq!(set.allow(None, Scope::Read), Err(TokenRefusal::Missing));
        assert_eq!(
            TokenSet::default().allow(Some("x"), Scope::Read),
            Err(TokenRefusal::Closed)
        );
    }

    #[test]
    fn a_bad_file_names_the_token_and_never_quotes_it() {
        let short = "[tokens.ci]\ntoken = \"short\"\nscopes = [\"deploy\"]\n";
        assert!(parse(short).unwrap_err().contains("`ci` is shorter"));
        let broken = "[tokens.ci]\ntoken = \"s3cret-s3cret-s3cret\nscopes = []\n";
        let error = parse(broken).unwrap_err();
        assert!(!error.contains("s3cret"), "{error}");
        let none = "[tokens.ci]\ntoken = \"long-enough-token-0123\"\nscopes = []\n";
        assert!(parse(none).unwrap_err().contains("no scopes"));
    }
}
