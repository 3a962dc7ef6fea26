//! One launch on disk: a small JSON file (`NAME.json`) holding its app, its input
//! exactly as given (or its input's address) and when it was launched; the file's
//! modification time records its last use.

use super::{Input, Launch, millis_since_epoch};
use crate::apps::names::{MAX_APP_NAME_LEN, is_valid_app_name};
use crate::apps::store::sync_dir;
use crate::client::hex;
use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The file format of one instance.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct InstanceFile<'a> {
    app: &'a str,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    input: Option<&'a RawValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    input_url: Option<&'a str>,
    /// Milliseconds since the epoch.
    created_ms: u64,
}

pub(super) fn encode(instance: &Launch) -> String {
    let (input, input_url) = match &instance.input {
        // The text was checked to be JSON when the instance was launched.
        Input::Json(json) => (serde_json::from_str::<&RawValue>(json).ok(), None),
        Input::Url(url) => (None, Some(url.as_ref())),
    };
    let created_ms = millis_since_epoch(instance.created);
    serde_json::to_string(&InstanceFile {
        app: &instance.app,
        input,
        input_url,
        created_ms,
    })
    .expect("serializing strings and numbers cannot fail")
}

pub(super) fn load_file(name: &str, path: &Path) -> anyhow::Result<Launch> {
    let text = std::fs::read_to_string(path)?;
    let file: InstanceFile<'_> = serde_json::from_str(&text)?;
    let input = match (file.input, file.input_url) {
        (Some(json), None) => Input::Json(json.get().into()),
        (None, Some(url)) => Input::Url(url.into()),
        _ => anyhow::bail!("needs exactly one of `input` and `input_url`"),
    };
    anyhow::ensure!(is_valid_app_name(file.app), "bad app name `{}`", file.app);
    let modified = std::fs::metadata(path)?.modified()?;
    let created = UNIX_EPOCH + Duration::from_millis(file.created_ms);
    Ok(Launch::new(
        name.into(),
        file.app.into(),
        input,
        created,
        modified,
    ))
}

pub(super) fn remove_file(dir: &Path, path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => sync_dir(dir),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error).with_context(|| format!("removing {}", path.display())),
    }
}

/// `APP-` and 8 random hex digits (32 bits: guessing a live instance's URL is impractical at
/// the rates a server answers), the app part shortened so the whole fits a name.
pub(super) fn generated_name(app: &str) -> String {
    let mut random = [0u8; 4];
    if getrandom::fill(&mut random).is_err() {
        // No OS randomness: fall back to the clock, still unique per launch in practice.
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        random = nanos.to_le_bytes();
    }
    let prefix: String = app.chars().take(MAX_APP_NAME_LEN - 9).collect();
    format!("{}-{}", prefix.trim_end_matches('-'), hex(&random))
}
