//! The input of a launched instance, as Refinery (django_docker_engine) gives it to a
//! visualization: JSON in the `INPUT_JSON` environment variable, or an address to fetch it
//! from in `INPUT_JSON_URL`.
//!
//! # Examples
//!
//! ```
//! use wasmount_sdk::input::Input;
//! let input = Input::parse(r#"{
//!     "api_prefix": "http://refinery/api/v2/",
//!     "file_relationships": [["http://data/a.tsv"], "http://data/b.tsv"],
//!     "parameters": [{"name": "title", "value": "Expression"}],
//!     "node_info": {}
//! }"#).unwrap();
//! assert_eq!(input.file_urls(), ["http://data/a.tsv", "http://data/b.tsv"]);
//! assert_eq!(input.parameter("title").and_then(|v| v.as_str()), Some("Expression"));
//! ```

use serde::Deserialize;
use serde_json::{Map, Value};

/// The environment variable holding the input itself.
pub const INPUT_JSON_ENV: &str = "INPUT_JSON";
/// The environment variable holding the address of the input.
pub const INPUT_JSON_URL_ENV: &str = "INPUT_JSON_URL";

/// A visualization's input. Refinery's fields are typed; anything else is kept in `other`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct Input {
    /// Base URL of the platform's API, if given.
    #[serde(default)]
    pub api_prefix: Option<String>,
    /// URLs of the data files: strings, possibly nested in lists (pairs, groups).
    #[serde(default)]
    pub file_relationships: Value,
    /// The tool's parameters: a list of `{"name", "value", …}` objects (Refinery) or an
    /// object of name → value.
    #[serde(default)]
    pub parameters: Value,
    /// Metadata of the data files, by node.
    #[serde(default)]
    pub node_info: Map<String, Value>,
    /// Folders the platform wanted created for the tool.
    #[serde(default)]
    pub extra_directories: Vec<String>,
    /// Every other field.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// Why the input could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError(pub String);

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InputError {}

impl Input {
    /// Parses input JSON.
    ///
    /// # Errors
    ///
    /// When `text` is not a JSON object with fields of the expected kinds.
    pub fn parse(text: &str) -> Result<Self, InputError> {
        serde_json::from_str(text).map_err(|e| InputError(format!("the input is not valid: {e}")))
    }

    /// The input from `INPUT_JSON`, else fetched from `INPUT_JSON_URL`; `None` when neither is
    /// set (the app was not launched as an instance).
    ///
    /// # Errors
    ///
    /// When the input is not valid, or fetching it fails (the app's manifest must allow the
    /// host in `allowed_outbound_hosts`).
    pub async fn from_env() -> Result<Option<Self>, InputError> {
        if let Ok(text) = std::env::var(INPUT_JSON_ENV) {
            return Self::parse(&text).map(Some);
        }
        let Ok(url) = std::env::var(INPUT_JSON_URL_ENV) else {
            return Ok(None);
        };
        let text = fetch_text(&url).await?;
        Self::parse(&text).map(Some)
    }

    /// Every data file URL in `file_relationships`, in order, nested lists flattened.
    pub fn file_urls(&self) -> Vec<&str> {
        fn collect<'a>(value: &'a Value, urls: &mut Vec<&'a str>) {
            match value {
                Value::String(url) => urls.push(url),
                Value::Array(items) => items.iter().for_each(|item| collect(item, urls)),
                _ => {}
            }
        }
        let mut urls = Vec::new();
        collect(&self.file_relationships, &mut urls);
        urls
    }

    /// The value of parameter `name`, from either layout of `parameters`.
    pub fn parameter(&self, name: &str) -> Option<&Value> {
        match &self.parameters {
            Value::Object(map) => map.get(name),
            Value::Array(items) => items
                .iter()
                .find(|item| item.get("name").and_then(Value::as_str) == Some(name))
                .and_then(|item| item.get("value")),
            _ => None,
        }
    }
}

/// GETs `url` and returns the body as text (invalid UTF-8 replaced).
///
/// # Errors
///
/// When the request is refused (not allowed by the manifest), fails, or the status is not
/// a success; the message names the URL.
pub async fn fetch_text(url: &str) -> Result<String, InputError> {
    let failed = |what: String| InputError(format!("fetching {url}: {what}"));
    let request = wstd::http::Request::get(url)
        .body(wstd::http::Body::empty())
        .map_err(|e| failed(e.to_string()))?;
    let mut response = wstd::http::Client::new()
        .send(request)
        .await
        .map_err(|e| failed(format!("{e:?}")))?;
    if !response.status().is_success() {
        return Err(failed(format!("status {}", response.status())));
    }
    let bytes = response
        .body_mut()
        .contents()
        .await
        .map_err(|e| failed(e.to_string()))?;
    Ok(String::from_utf8_lossy(bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_as_an_object_and_unknown_fields_are_kept() {
        let input = Input::parse(
            r#"{"parameters": {"color": "red"}, "extra": 1, "file_relationships": "u"}"#,
        )
        .unwrap();
        assert_eq!(input.parameter("color"), Some(&Value::from("red")));
        assert_eq!(input.other.get("extra"), Some(&Value::from(1)));
        assert_eq!(input.file_urls(), ["u"]);
    }

    #[test]
    fn an_empty_object_is_a_valid_input_and_other_json_is_not() {
        assert_eq!(Input::parse("{}").unwrap(), Input::default());
        let error = Input::parse("[1, 2]").unwrap_err();
        assert!(error.0.contains("not valid"), "{error}");
    }
}
