//! A guest's stdout and stderr, sent line by line to the host log tagged with the app's name.

use bytes::Bytes;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// The longest line kept before it is logged in pieces, so a guest cannot grow host memory.
const MAX_LINE_BYTES: usize = 16 * 1024;
/// How much the guest may write in one call.
const WRITE_BUDGET: usize = 64 * 1024;

/// Which of the guest's streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    /// The guest's stdout.
    Stdout,
    /// The guest's stderr.
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// A guest stream that logs what the guest writes, tagged with the app name.
#[derive(Clone)]
pub(crate) struct GuestLog {
    app: Arc<str>,
    stream: Stream,
    /// The id of the request the instance is serving (a reused instance serves several).
    request: RequestId,
    /// Where lines also go while someone follows the app's output.
    tail: LogTail,
    /// The last lines of the request being served, kept to explain a failure (stderr).
    recent: Option<RecentLines>,
}

/// The last [`RECENT_LINES`] lines a stream wrote for the request an instance serves now.
pub(crate) type RecentLines = Arc<std::sync::Mutex<std::collections::VecDeque<Arc<str>>>>;

/// How many lines [`RecentLines`] keeps: a panic message and its notes fit.
const RECENT_LINES: usize = 40;
/// How much of each line [`RecentLines`] keeps, in bytes: with [`RECENT_LINES`], at most
/// 20 KiB per instance outside its memory budget.
const RECENT_LINE_BYTES: usize = 512;

/// One line a guest wrote, for whoever follows its app's output.
#[derive(Debug, Clone)]
pub(crate) struct GuestLine {
    /// The app.
    pub app: Arc<str>,
    /// The request it wrote the line for.
    pub request_id: Arc<str>,
    /// `stdout` or `stderr`.
    pub stream: &'static str,
    /// The line, control characters escaped.
    pub text: Arc<str>,
}

/// The server's feed of guest lines (bounded: a follower that falls behind skips lines).
pub(crate) type LogTail = tokio::sync::broadcast::Sender<GuestLine>;

/// A feed for a server's guest lines, keeping at most 1024 a slow follower has not read.
pub(crate) fn log_tail() -> LogTail {
    tokio::sync::broadcast::channel(1024).0
}

/// The id of the request an instance is serving now, shared by its two streams.
pub(crate) type RequestId = Arc<std::sync::Mutex<Arc<str>>>;

impl GuestLog {
    /// The stream `stream` of app `app`, its lines tagged with the id in `request`.
    pub(crate) fn new(app: Arc<str>, stream: Stream, request: RequestId, tail: LogTail) -> Self {
        Self {
            app,
            stream,
            request,
            tail,
            recent: None,
        }
    }

    /// This stream, also keeping its last lines in `recent`.
    pub(crate) fn keeping(mut self, recent: RecentLines) -> Self {
        self.recent = Some(recent);
        self
    }

    fn writer(&self) -> LineWriter {
        LineWriter {
            log: self.clone(),
            pending: Vec::new(),
        }
    }
}

impl IsTerminal for GuestLog {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestLog {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.writer())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.writer())
    }
}

/// Collects bytes into lines and logs each complete one.
struct LineWriter {
    log: GuestLog,
    pending: Vec<u8>,
}

impl LineWriter {
    fn push(&mut self, mut bytes: &[u8]) {
        while let Some(newline) = bytes.iter().position(|b| *b == b'\n') {
            self.pending.extend_from_slice(&bytes[..newline]);
            self.emit();
            bytes = &bytes[newline + 1..];
        }
        self.pending.extend_from_slice(bytes);
        while self.pending.len() >= MAX_LINE_BYTES {
            let rest = self.pending.split_off(MAX_LINE_BYTES);
            self.emit();
            self.pending = rest;
        }
    }

    fn emit(&mut self) {
        let line = String::from_utf8_lossy(&self.pending);
        let line = escape_controls(line.trim_end_matches('\r'));
        let request = self.log.request.lock().unwrap().clone();
        tracing::info!(
            target: "wasmount::guest",
            app = %self.log.app,
            request_id = %request,
            stream = self.log.stream.name(),
            "{line}"
        );
        if let Some(recent) = &self.log.recent {
            let mut recent = recent.lock().unwrap();
            if recent.len() == RECENT_LINES {
                recent.pop_front();
            }
            let mut end = line.len().min(RECENT_LINE_BYTES);
            while !line.is_char_boundary(end) {
                end -= 1;
            }
            recent.push_back(line[..end].into());
        }
        if self.log.tail.receiver_count() > 0 {
            let _ = self.log.tail.send(GuestLine {
                app: self.log.app.clone(),
                request_id: request,
                stream: self.log.stream.name(),
                text: line.as_ref().into(),
            });
        }
        self.pending.clear();
    }
}

/// `line` with every control character but tab escaped (`\r`, `\u{1b}`), so a guest can
/// neither forge log lines nor drive the operator's terminal.
fn escape_controls(line: &str) -> std::borrow::Cow<'_, str> {
    if !line.chars().any(|c| c.is_control() && c != '\t') {
        return line.into();
    }
    line.chars()
        .map(|c| {
            if c.is_control() && c != '\t' {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if !self.pending.is_empty() {
            self.emit();
        }
    }
}

impl AsyncWrite for LineWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.get_mut().push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for LineWriter {
    async fn ready(&mut self) {}
}

impl OutputStream for LineWriter {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_BUDGET)
    }
}

#[cfg(test)]
mod tests {
    use super::escape_controls;

    #[test]
    fn control_characters_are_escaped_so_lines_cannot_be_forged() {
        assert_eq!(escape_controls("plain\ttext"), "plain\ttext");
        assert_eq!(escape_controls("ok\rERROR forged"), "ok\\rERROR forged");
        assert_eq!(escape_controls("\u{1b}[31mred"), "\\u{1b}[31mred");
        assert_eq!(escape_controls("a\u{7f}b"), "a\\u{7f}b");
    }
}
