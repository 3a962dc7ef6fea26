//! Request ids and the access log: every request gets an `x-request-id` (the client's when
//! it is sane, else a new one), which the guest sees, the response carries and the guest's
//! log lines are tagged with; with `--access-log`, one line per request (JSON, or the
//! combined log format with the id, app and duration appended), to stderr or a file.

use crate::config::AccessLogFormat;
use crate::headers::X_REQUEST_ID;
use http::HeaderMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The longest request id kept from a client.
const MAX_REQUEST_ID_CHARS: usize = 128;

/// The request id for a request with `headers`: the client's when it is 1–128 characters of
/// `[A-Za-z0-9._:-]`, else a new one (a per-process random prefix and a counter).
pub(crate) fn request_id(headers: &HeaderMap) -> String {
    let sane = |id: &str| {
        !id.is_empty()
            && id.len() <= MAX_REQUEST_ID_CHARS
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b))
    };
    match headers.get(X_REQUEST_ID).and_then(|v| v.to_str().ok()) {
        Some(id) if sane(id) => id.to_owned(),
        _ => new_request_id(),
    }
}

fn new_request_id() -> String {
    static PREFIX: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| {
        let mut bytes = [0u8; 4];
        let _ = getrandom::fill(&mut bytes);
        u32::from_le_bytes(bytes)
    });
    format!("{prefix:08x}-{:x}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// One request, as the access log records it.
pub(crate) struct LogLine<'a> {
    /// When it arrived.
    pub at: SystemTime,
    /// Its request id.
    pub id: &'a str,
    /// The app that served it (`None`: none did).
    pub app: Option<&'a str>,
    /// Its method.
    pub method: &'a str,
    /// Its path and query.
    pub target: &'a str,
    /// The response status.
    pub status: u16,
    /// Request body bytes, when the client said (`content-length`).
    pub bytes_in: Option<u64>,
    /// Response body bytes, when known at the response head.
    pub bytes_out: Option<u64>,
    /// Time to the response head.
    pub duration: Duration,
    /// The client (after trusted proxies).
    pub client: SocketAddr,
    /// `referer` and `user-agent`, for the combined format.
    pub referer: Option<&'a str>,
    /// See `referer`.
    pub user_agent: Option<&'a str>,
}

/// Where access log lines go.
pub(crate) struct AccessLog {
    format: AccessLogFormat,
    out: Mutex<Box<dyn std::io::Write + Send>>,
}

impl AccessLog {
    /// A log in `format`, appended to `file`, or to stderr.
    ///
    /// # Errors
    ///
    /// If the file cannot be opened.
    pub(crate) fn open(format: AccessLogFormat, file: Option<&Path>) -> anyhow::Result<Self> {
        let out: Box<dyn std::io::Write + Send> = match file {
            Some(path) => Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| {
                        anyhow::anyhow!("opening --access-log-file {}: {e}", path.display())
                    })?,
            ),
            None => Box::new(std::io::stderr()),
        };
        Ok(Self {
            format,
            out: Mutex::new(out),
        })
    }

    /// Writes one line for `entry` (a failure to write is ignored: serving goes on).
    pub(crate) fn write(&self, entry: &LogLine<'_>) {
        let line = match self.format {
            AccessLogFormat::Json => json_line(entry),
            AccessLogFormat::Combined => combined_line(entry),
        };
        let _ = self.out.lock().unwrap().write_all(line.as_bytes());
    }
}

fn json_line(entry: &LogLine<'_>) -> String {
    let line = serde_json::json!({
        "time": humantime::format_rfc3339_millis(entry.at).to_string(),
        "request_id": entry.id,
        "app": entry.app,
        "method": entry.method,
        "path": entry.target,
        "status": entry.status,
        "bytes_in": entry.bytes_in,
        "bytes_out": entry.bytes_out,
        "duration_ms": (entry.duration.as_secs_f64() * 1e6).round() / 1e3,
        "client": entry.client.ip().to_string(),
    });
    format!("{line}\n")
}

fn combined_line(entry: &LogLine<'_>) -> String {
    let quoted =
        |text: Option<&str>| text.map_or("-".to_owned(), |t| t.escape_default().to_string());
    format!(
        "{} - - [{}] \"{} {} HTTP/1.1\" {} {} \"{}\" \"{}\" {} {} {:.3}\n",
        entry.client.ip(),
        clf_time(entry.at),
        entry.method,
        entry.target.escape_default(),
        entry.status,
        entry.bytes_out.map_or("-".to_owned(), |b| b.to_string()),
        quoted(entry.referer),
        quoted(entry.user_agent),
        entry.id,
        entry.app.unwrap_or("-"),
        entry.duration.as_secs_f64(),
    )
}

/// `27/Nov/2026:23:58:18 +0000`: the common log format's time, in UTC.
fn clf_time(at: SystemTime) -> String {
    let seconds = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, in_day) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{day:02}/{}/{year}:{:02}:{:02}:{:02} +0000",
        MONTHS[(month - 1) as usize],
        in_day / 3600,
        in_day % 3600 / 60,
        in_day % 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_are_kept_when_sane_and_replaced_otherwise() {
        let mut headers = HeaderMap::new();
        headers.insert(X_REQUEST_ID, "abc-123.x:y_z".parse().unwrap());
        assert_eq!(request_id(&headers), "abc-123.x:y_z");
        headers.insert(X_REQUEST_ID, "has space".parse().unwrap());
        assert_ne!(request_id(&headers), "has space");
        headers.insert(X_REQUEST_ID, "x".repeat(129).parse().unwrap());
        assert!(
            request_id(&headers).len() < 30,
            "a new one, not the long one"
        );
        let (a, b) = (new_request_id(), new_request_id());
        assert_ne!(a, b);
    }

    #[test]
    fn times_are_in_the_common_log_format() {
        let at = UNIX_EPOCH + Duration::from_secs(1_795_823_898); // 2026-11-27T23:58:18Z
        assert_eq!(clf_time(at), "27/Nov/2026:23:58:18 +0000");
        assert_eq!(clf_time(UNIX_EPOCH), "01/Jan/1970:00:00:00 +0000");
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
    }
}
