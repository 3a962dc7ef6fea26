//! One launch on disk: a small JSON file (`NAME.json`) holding its app, its input
//! exactly as given (or its input's address) and when it was launched; the file's
//! modification time records its last use.

use super::{Gate, Input, Launch, millis_since_epoch};
use crate::apps::names::{MAX_APP_NAME_LEN, is_valid_app_name};
use crate::apps::store::sync_dir;
use crate::config::Access;
use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    access: Option<Access>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    label: Option<&'a str>,
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
        access: instance.gate.access,
        label: instance.gate.label.as_deref(),
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
    let gate = Gate {
        access: file.access,
        label: file.label.map(Into::into),
    };
    Ok(Launch::new(name.into(), file.app.into(), input, created, modified).with_gate(gate))
}

pub(super) fn remove_file(dir: &Path, path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => sync_dir(dir),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error).with_context(|| format!("removing {}", path.display())),
    }
}

/// How many random bytes a generated launch name carries: 128 bits, so a launch's URL is a
/// capability no client can guess (at a million guesses a second against a million live
/// launches, one hit takes about 10^19 years).
const NAME_RANDOM_BYTES: usize = 16;

/// The letters of a name's random part: RFC 4648 base32, lowercase (URL-safe, a valid DNS
/// label, 5 bits a letter).
const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// `APP-` and 26 letters of base32 from the OS random source (128 bits), the app part
/// shortened so the whole fits a name.
///
/// # Errors
///
/// The OS has no randomness to give: no name is made (a clock would be guessable).
pub(super) fn generated_name(app: &str) -> Result<String, getrandom::Error> {
    let mut random = [0u8; NAME_RANDOM_BYTES];
    getrandom::fill(&mut random)?;
    let letters = base32(&random);
    let prefix: String = app
        .chars()
        .take(MAX_APP_NAME_LEN - 1 - letters.len())
        .collect();
    Ok(format!("{}-{letters}", prefix.trim_end_matches('-')))
}

/// `bytes` in lowercase base32 without padding.
fn base32(bytes: &[u8]) -> String {
    let mut letters = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0);
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            letters.push(BASE32[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        letters.push(BASE32[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    letters
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_names_carry_128_random_bits_as_a_valid_name() {
        let name = generated_name("viz").unwrap();
        let random = name.strip_prefix("viz-").unwrap();
        assert_eq!(random.len(), 26, "{name}");
        assert!(crate::apps::names::is_valid_app_name(&name), "{name}");
        assert_ne!(name, generated_name("viz").unwrap());
        let long = generated_name(&"a".repeat(63)).unwrap();
        assert!(long.len() <= MAX_APP_NAME_LEN && crate::apps::names::is_valid_app_name(&long));
    }

    #[test]
    fn base32_is_rfc_4648_lowercase() {
        assert_eq!(base32(b"foobar"), "mzxw6ytboi");
        assert_eq!(base32(&[0xff; 16]).len(), 26);
    }
}
