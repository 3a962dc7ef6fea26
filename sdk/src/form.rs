//! Decoding `application/x-www-form-urlencoded` data: HTML form posts and query strings.

/// The fields of a form or query string, in the order they were sent.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Form {
    fields: Vec<(String, String)>,
}

impl Form {
    /// Parses `a=1&b=two+words&c=%2F` style data; malformed escapes are kept as written.
    ///
    /// # Examples
    ///
    /// ```
    /// let form = wasmount_sdk::form::Form::parse("name=Ada+L&x=%3C1%3E&flag");
    /// assert_eq!(form.get("name"), Some("Ada L"));
    /// assert_eq!(form.get("x"), Some("<1>"));
    /// assert_eq!(form.get("flag"), Some(""));
    /// assert_eq!(form.get("missing"), None);
    /// ```
    pub fn parse(encoded: &str) -> Self {
        let fields = encoded
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                (decode_component(key), decode_component(value))
            })
            .collect();
        Self { fields }
    }

    /// The first value sent for `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Every `(name, value)` pair, in order.
    pub fn fields(&self) -> &[(String, String)] {
        &self.fields
    }
}

/// Decodes one form component: `+` is a space and `%XX` a byte; invalid UTF-8 is replaced.
///
/// # Examples
///
/// ```
/// assert_eq!(wasmount_sdk::form::decode_component("a+b%2Bc%zz"), "a b+c%zz");
/// ```
pub fn decode_component(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (hex_value(bytes.get(i + 1)), hex_value(bytes.get(i + 2))) {
                (Some(high), Some(low)) => {
                    out.push(high << 4 | low);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_value(byte: Option<&u8>) -> Option<u8> {
    let byte = *byte?;
    (byte as char).to_digit(16).map(|digit| digit as u8)
}
