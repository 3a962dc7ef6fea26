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
//! assert_eq!(input.parameter_as::<String>("title"), Ok(Some("Expression".to_owned())));
//! ```

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// The environment variable holding the input itself.
pub const INPUT_JSON_ENV: &str = "INPUT_JSON";
/// The environment variable holding the address of the input.
pub const INPUT_JSON_URL_ENV: &str = "INPUT_JSON_URL";
/// The environment variable in which wasmount gives a launched instance its own name.
pub const INSTANCE_ENV: &str = "WASMOUNT_INSTANCE";

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

    /// The name of the launched instance this request is for (the `NAME` of its URL
    /// `/NAME/`), from `WASMOUNT_INSTANCE`; `None` when the app was not launched as an
    /// instance (or runs under another host).
    pub fn instance_name() -> Option<String> {
        non_empty(std::env::var(INSTANCE_ENV).ok())
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

    /// The value of parameter `name` as a `T`, from either layout of `parameters`; `Ok(None)`
    /// when there is no such parameter. A string that is not a `T` is also read as the JSON
    /// it holds, for values sent as text (`"5"` is then a valid `u32`, `"true"` a `bool`).
    ///
    /// # Errors
    ///
    /// When the value is not a `T`; the message names the parameter.
    pub fn parameter_as<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, InputError> {
        let Some(value) = self.parameter(name) else {
            return Ok(None);
        };
        let from_text = || {
            value
                .as_str()
                .and_then(|text| serde_json::from_str(text).ok())
        };
        T::deserialize(value)
            .or_else(|error| from_text().ok_or(error))
            .map(Some)
            .map_err(|error| InputError(format!("parameter `{name}` is not valid: {error}")))
    }
}

/// `value` unless it is empty.
fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|text| !text.is_empty())
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
    fn typed_parameters_from_either_layout_and_from_text() {
        let list = Input::parse(
            r#"{"parameters": [
                {"name": "rows", "value": 20, "value_type": "INTEGER"},
                {"name": "scale", "value": "1.5", "value_type": "FLOAT"},
                {"name": "log", "value": "true", "value_type": "BOOLEAN"},
                {"name": "title", "value": "42", "value_type": "STRING"}
            ]}"#,
        )
        .unwrap();
        assert_eq!(list.parameter_as::<u32>("rows"), Ok(Some(20)));
        assert_eq!(list.parameter_as::<f64>("scale"), Ok(Some(1.5)));
        assert_eq!(list.parameter_as::<bool>("log"), Ok(Some(true)));
        assert_eq!(
            list.parameter_as::<String>("title"),
            Ok(Some("42".to_owned()))
        );
        assert_eq!(list.parameter_as::<u32>("missing"), Ok(None));

        let object = Input::parse(r#"{"parameters": {"colors": ["red", "blue"]}}"#).unwrap();
        let colors = object.parameter_as::<Vec<String>>("colors").unwrap();
        assert_eq!(colors, Some(vec!["red".to_owned(), "blue".to_owned()]));
    }

    #[test]
    fn a_parameter_of_another_type_is_an_error_naming_it() {
        let input = Input::parse(r#"{"parameters": {"rows": "many"}}"#).unwrap();
        let error = input.parameter_as::<u32>("rows").unwrap_err();
        assert!(error.0.contains("parameter `rows`"), "{error}");
    }

    #[test]
    fn an_empty_instance_name_is_no_name() {
        assert_eq!(
            non_empty(Some("dataset-a".to_owned())),
            Some("dataset-a".to_owned())
        );
        assert_eq!(non_empty(Some(String::new())), None);
        assert_eq!(non_empty(None), None);
    }

    #[test]
    fn an_empty_object_is_a_valid_input_and_other_json_is_not() {
        assert_eq!(Input::parse("{}").unwrap(), Input::default());
        let error = Input::parse("[1, 2]").unwrap_err();
        assert!(error.0.contains("not valid"), "{error}");
    }
}
