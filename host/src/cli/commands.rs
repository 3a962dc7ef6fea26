//! The command-line client of the admin API: `wasmount deploy`, `wasmount apps`,
//! `wasmount remove`, `wasmount launch`. It speaks plain HTTP/1.1 to the server (through
//! [`crate::client`]) and prints the server's own message when something is refused.

use anyhow::{Context as _, bail};
use bytes::Bytes;
use clap::Args;
use http::{Method, Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Empty, Full, StreamBody, combinators::BoxBody};
use hyper::body::Frame;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;
use std::path::PathBuf;
use tokio::io::AsyncReadExt as _;

/// Upload chunk size, also the progress bar's step.
const CHUNK_BYTES: usize = 64 * 1024;

/// Where the server is and how to authenticate.
#[derive(Debug, Clone, Args)]
pub(crate) struct ServerArgs {
    /// The server's base URL (plain http).
    #[arg(
        long,
        env = "WASMOUNT_SERVER",
        default_value = "http://127.0.0.1:8080",
        value_name = "URL"
    )]
    pub(crate) server: String,

    /// The admin token (the server's --admin-token).
    #[arg(
        long,
        env = "WASMOUNT_ADMIN_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub(crate) token: Option<String>,

    /// Trust this PEM CA (or self-signed certificate) for an https:// server, besides the
    /// usual public roots.
    #[arg(long, env = "WASMOUNT_CA_CERT", value_name = "FILE")]
    pub(crate) ca_cert: Option<PathBuf>,
}

/// `wasmount deploy FILE`: upload a component, adding or replacing an app.
#[derive(Debug, Clone, Args)]
pub(crate) struct DeployArgs {
    /// The component (`.wasm`) to upload, or `oci://HOST[:PORT]/REPO[:TAG|@sha256:…]`.
    pub(crate) file: PathBuf,

    /// The app's name; defaults to the file name without `.wasm`.
    #[arg(long, value_name = "NAME")]
    pub(crate) name: Option<String>,

    /// The app's settings (`NAME.toml`), sent with the component so both go live together.
    #[arg(long, value_name = "FILE")]
    pub(crate) manifest: Option<PathBuf>,

    #[command(flatten)]
    pub(crate) server: ServerArgs,

    #[command(flatten)]
    pub(crate) registry: super::oci::RegistryArgs,
}

/// `wasmount remove NAME`: unmount an app and delete it from the server's store.
#[derive(Debug, Clone, Args)]
pub(crate) struct RemoveArgs {
    /// The app to remove.
    pub(crate) name: String,

    #[command(flatten)]
    pub(crate) server: ServerArgs,
}

/// `wasmount launch APP --input FILE`: bind an app to an input at a URL of its own.
#[derive(Debug, Clone, Args)]
pub(crate) struct LaunchArgs {
    /// The app the instance runs.
    pub(crate) app: String,

    /// A JSON file the app gets as `INPUT_JSON` (`-` reads standard input).
    #[arg(long, value_name = "FILE", required_unless_present = "input_url")]
    pub(crate) input: Option<PathBuf>,

    /// An address the app gets as `INPUT_JSON_URL` instead.
    #[arg(long, value_name = "URL", conflicts_with = "input")]
    pub(crate) input_url: Option<String>,

    /// The instance's name (and URL segment); default: `APP-` and 8 random hex digits.
    #[arg(long, value_name = "NAME")]
    pub(crate) name: Option<String>,

    #[command(flatten)]
    pub(crate) server: ServerArgs,
}

type RequestBody = BoxBody<Bytes, std::io::Error>;

/// Uploads `args.file` and prints what the server mounted.
///
/// # Errors
///
/// The file cannot be read, the server cannot be reached, or it refused the upload (its
/// message is in the error).
pub(crate) async fn deploy(mut args: DeployArgs) -> anyhow::Result<()> {
    // From a registry: pulled (digests checked) into a temporary file, then as any file.
    let _pulled = match args.file.to_str().and_then(super::oci::reference_of) {
        Some(reference) => {
            let reference = reference?;
            let pulled = super::oci::pull(&reference, &args.registry).await?;
            let file = tempfile::NamedTempFile::new().context("a temporary file for the pull")?;
            std::fs::write(file.path(), &pulled.bytes).context("writing the pulled component")?;
            eprintln!(
                "pulled {}{reference} ({} bytes, manifest {})",
                super::oci::SCHEME,
                pulled.bytes.len(),
                pulled.digest
            );
            args.name = args
                .name
                .or_else(|| Some(super::oci::default_name(&reference).to_owned()));
            args.file = file.path().to_owned();
            Some(file)
        }
        None => None,
    };
    let name = match &args.name {
        Some(name) => name.clone(),
        None => args
            .file
            .file_stem()
            .and_then(|s| s.to_str())
            .context("cannot take an app name from the file name: pass --name")?
            .to_owned(),
    };
    // Ask first whether this token may deploy this name: a server refusing an upload early
    // closes the connection mid-body, and the client could lose the server's reason.
    let path = format!("/_wasmount/apps/{name}");
    let (status, reply) = send(&args.server, Method::GET, &path, empty(), None).await?;
    if status != StatusCode::NOT_FOUND {
        expect_success(status, reply)?;
    }
    let progress = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    progress.set_message(format!("uploading {name}"));
    let (body, content) = upload_body(&args, progress.clone()).await?;
    let (status, reply) = send(&args.server, Method::PUT, &path, body, Some(content)).await?;
    progress.finish_and_clear();
    let reply = expect_success(status, reply)?;
    let app = &reply["app"];
    let replaced = reply["replaced"] == Value::Bool(true);
    println!(
        "{} {name}: {} bytes, sha256 {}, compiled in {:.0} ms, serving at {}{}",
        if replaced { "replaced" } else { "deployed" },
        app["size"],
        app["sha256"].as_str().unwrap_or("?"),
        reply["compile_ms"].as_f64().unwrap_or(0.0),
        args.server.server.trim_end_matches('/'),
        app["route"].as_str().unwrap_or("/"),
    );
    Ok(())
}

/// The body of an upload and its length and content type: the component streamed from its
/// file (advancing `progress`), or with `--manifest` a multipart body of both.
async fn upload_body(
    args: &DeployArgs,
    progress: ProgressBar,
) -> anyhow::Result<(RequestBody, (u64, String))> {
    let mut file = tokio::fs::File::open(&args.file)
        .await
        .with_context(|| format!("opening {}", args.file.display()))?;
    let total = file.metadata().await?.len();
    progress.set_length(total);
    let chunks = futures::stream::poll_fn(move |cx| {
        let mut buffer = vec![0; CHUNK_BYTES];
        let read = std::pin::pin!(file.read(&mut buffer));
        read.poll(cx).map(|result| match result {
            Ok(0) => None,
            Ok(n) => {
                buffer.truncate(n);
                progress.inc(n as u64);
                Some(Ok(Frame::data(Bytes::from(buffer))))
            }
            Err(error) => Some(Err(error)),
        })
    });
    let Some(manifest) = &args.manifest else {
        let content = (total, "application/wasm".to_owned());
        return Ok((StreamBody::new(chunks).boxed(), content));
    };
    let manifest = tokio::fs::read(manifest)
        .await
        .with_context(|| format!("reading {}", manifest.display()))?;
    let component = BodyExt::collect(StreamBody::new(chunks)).await?.to_bytes();
    let (content_type, body) = crate::client::multipart(&[
        ("component", "application/wasm", &component),
        ("manifest", "application/toml", &manifest),
    ]);
    let content = (body.len() as u64, content_type);
    let body = Full::new(Bytes::from(body))
        .map_err(|never| match never {})
        .boxed();
    Ok((body, content))
}

/// Prints the server's apps, one line each.
///
/// # Errors
///
/// The server cannot be reached or refused the call.
pub(crate) async fn list(args: ServerArgs) -> anyhow::Result<()> {
    let (status, reply) = send(&args, Method::GET, "/_wasmount/apps", empty(), None).await?;
    let reply = expect_success(status, reply)?;
    let apps = reply["apps"].as_array().cloned().unwrap_or_default();
    if apps.is_empty() {
        println!("no apps");
        return Ok(());
    }
    println!(
        "{:<24} {:<8} {:>10}  {:<12}  {:<7} ROUTE",
        "NAME", "STATE", "BYTES", "SHA256", "SOURCE"
    );
    for app in apps {
        let text = |key: &str| app[key].as_str().unwrap_or("-").to_owned();
        let sha = text("sha256");
        println!(
            "{:<24} {:<8} {:>10}  {:<12}  {:<7} {}{}",
            text("name"),
            text("state"),
            app["size"].as_u64().map_or("-".into(), |s| s.to_string()),
            &sha[..sha.len().min(12)],
            text("source"),
            text("route"),
            app["error"]
                .as_str()
                .map(|e| format!("  error: {e}"))
                .unwrap_or_default(),
        );
    }
    Ok(())
}

/// Removes an app.
///
/// # Errors
///
/// The server cannot be reached or refused the call.
pub(crate) async fn remove(args: RemoveArgs) -> anyhow::Result<()> {
    let path = format!("/_wasmount/apps/{}", args.name);
    let (status, reply) = send(&args.server, Method::DELETE, &path, empty(), None).await?;
    if status == StatusCode::NOT_FOUND {
        // Apps and launches share one namespace: the name may be an instance's.
        let path = format!("/_wasmount/instances/{}", args.name);
        let (status, _) = send(&args.server, Method::DELETE, &path, empty(), None).await?;
        if status.is_success() {
            println!("removed launch {}", args.name);
            return Ok(());
        }
        bail!("no app or launch named `{}`", args.name);
    }
    let reply = expect_success(status, reply)?;
    match reply["instances_removed"].as_u64() {
        Some(n) if n > 0 => println!("removed {} and its {n} launch(es)", args.name),
        _ => println!("removed {}", args.name),
    }
    Ok(())
}

/// Lists the launches of a running server: name, app, last use, URL.
///
/// # Errors
///
/// The server cannot be reached or refused the token.
pub(crate) async fn instances(args: ServerArgs) -> anyhow::Result<()> {
    let (status, reply) = send(&args, Method::GET, "/_wasmount/instances", empty(), None).await?;
    let reply = expect_success(status, reply)?;
    let instances = reply["instances"].as_array().cloned().unwrap_or_default();
    if instances.is_empty() {
        println!("no launches");
        return Ok(());
    }
    println!("{:<24} {:<16} {:<25} URL", "NAME", "APP", "LAST USED");
    for instance in instances {
        let text = |key: &str| instance[key].as_str().unwrap_or("-").to_owned();
        println!(
            "{:<24} {:<16} {:<25} {}",
            text("name"),
            text("app"),
            text("last_used"),
            text("url")
        );
    }
    Ok(())
}

/// Launches an instance and prints its URL (only the URL, so scripts can capture it).
///
/// # Errors
///
/// The input cannot be read or is not JSON, the server cannot be reached, or it refused.
pub(crate) async fn launch(args: LaunchArgs) -> anyhow::Result<()> {
    /// The body of `POST /_wasmount/instances`; the input goes out as written (a raw value),
    /// so the app gets the file's exact text.
    #[derive(serde::Serialize)]
    struct Launch<'a> {
        app: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        input: Option<&'a serde_json::value::RawValue>,
        #[serde(skip_serializing_if = "Option::is_none")]
        input_url: Option<&'a str>,
    }
    let raw = match &args.input {
        Some(path) => {
            let text = if path.as_os_str() == "-" {
                let mut text = String::new();
                tokio::io::stdin().read_to_string(&mut text).await?;
                text
            } else {
                tokio::fs::read_to_string(path)
                    .await
                    .with_context(|| format!("reading {}", path.display()))?
            };
            Some(
                serde_json::value::RawValue::from_string(text.trim().to_owned())
                    .with_context(|| format!("{} is not JSON", path.display()))?,
            )
        }
        None if args.input_url.is_some() => None,
        None => bail!("give --input FILE or --input-url URL"),
    };
    let document = serde_json::to_string(&Launch {
        app: &args.app,
        name: args.name.as_deref(),
        input: raw.as_deref(),
        input_url: args.input_url.as_deref().filter(|_| raw.is_none()),
    })?;
    let content = Some((document.len() as u64, "application/json".to_owned()));
    let body = Full::new(Bytes::from(document))
        .map_err(|never| match never {})
        .boxed();
    let (status, reply) = send(
        &args.server,
        Method::POST,
        "/_wasmount/instances",
        body,
        content,
    )
    .await?;
    let reply = expect_success(status, reply)?;
    println!("{}", reply["url"].as_str().unwrap_or("?"));
    Ok(())
}

fn empty() -> RequestBody {
    Empty::new().map_err(|never| match never {}).boxed()
}

/// Sends one request to the server and returns the status and the body parsed as JSON (or
/// `Null` for an empty body).
async fn send(
    server: &ServerArgs,
    method: Method,
    path: &str,
    body: RequestBody,
    content: Option<(u64, String)>,
) -> anyhow::Result<(StatusCode, Value)> {
    let uri: Uri = server
        .server
        .parse()
        .with_context(|| format!("invalid --server URL `{}`", server.server))?;
    let tls = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => bail!("--server must be an http:// or https:// URL"),
    };
    let authority = uri.authority().context("--server needs a host")?.clone();
    let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let address = format!("{}:{port}", authority.host());
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, authority.as_str());
    if let Some(token) = &server.token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    if let Some((length, content_type)) = content {
        request = request
            .header(header::CONTENT_LENGTH, length)
            .header(header::CONTENT_TYPE, content_type);
    }
    let request = request.body(body)?;
    let response = if tls {
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let stream = connect_tls(&address, host, server.ca_cert.as_deref()).await?;
        crate::client::send_on(stream, request).await
    } else {
        crate::client::send(&address, request).await
    }
    .with_context(|| format!("sending the request to {}", server.server))?;
    let status = response.status();
    let bytes = response.into_body();
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).trim().to_owned()))
    };
    Ok((status, value))
}

/// A TLS connection to `address`, the certificate checked for `host` against the public
/// roots and `ca_cert`.
async fn connect_tls(
    address: &str,
    host: &str,
    ca_cert: Option<&std::path::Path>,
) -> anyhow::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_cert {
        let certs = rustls::pki_types::CertificateDer::pem_file_iter(path)
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .with_context(|| format!("reading --ca-cert {}", path.display()))?;
        for cert in certs {
            roots
                .add(cert)
                .with_context(|| format!("--ca-cert {}", path.display()))?;
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(host.to_owned())
        .with_context(|| format!("`{host}` is not a host name or address"))?;
    let tcp = tokio::net::TcpStream::connect(address)
        .await
        .with_context(|| format!("connecting to {address}"))?;
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    Ok(connector.connect(name, tcp).await?)
}

/// The reply on success; otherwise an error with the server's message.
fn expect_success(status: StatusCode, reply: Value) -> anyhow::Result<Value> {
    if status.is_success() {
        return Ok(reply);
    }
    let message = reply["error"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| reply.as_str().map(str::to_owned))
        .unwrap_or_else(|| reply.to_string());
    bail!("the server refused ({status}): {message}")
}
