//! The request as a guest sees it, in the WSGI tradition: the path without the app's mount
//! prefix (PATH_INFO), the prefix in `x-forwarded-prefix` (SCRIPT_NAME), `host` always
//! present, and `x-forwarded-*` set by the server. Forwarding headers a client sent are kept
//! only from a trusted proxy (`--trusted-proxies`); from anyone else they are removed where
//! the request enters the server ([`strip_untrusted`]), so no part of it sees them.

use http::{HeaderMap, HeaderValue, Request, Uri, header};
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};

/// The mount prefix header (WSGI's `SCRIPT_NAME`).
pub(crate) const X_FORWARDED_PREFIX: &str = "x-forwarded-prefix";
const X_FORWARDED_PROTO: &str = "x-forwarded-proto";
const X_FORWARDED_FOR: &str = "x-forwarded-for";
const X_FORWARDED_HOST: &str = "x-forwarded-host";

/// Headers by which a proxy tells where a request came from and how it was addressed.
const FORWARDING_HEADERS: [&str; 7] = [
    "forwarded",
    X_FORWARDED_FOR,
    X_FORWARDED_HOST,
    X_FORWARDED_PROTO,
    X_FORWARDED_PREFIX,
    "x-forwarded-port",
    "x-real-ip",
];

/// The proxies whose forwarding headers are believed.
#[derive(Debug, Clone, Default)]
pub(crate) struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Proxies at the addresses in `networks`.
    pub(crate) fn new(networks: Vec<IpNet>) -> Self {
        Self(networks)
    }

    fn trust(&self, peer: IpAddr) -> bool {
        let peer = match peer {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(peer, IpAddr::V4),
            v4 => v4,
        };
        self.0.iter().any(|network| network.contains(&peer))
    }

    /// Removes the forwarding headers of a request from `peer` unless it is a trusted proxy.
    pub(crate) fn strip_untrusted(&self, peer: SocketAddr, headers: &mut HeaderMap) {
        if self.0.is_empty() || !self.trust(peer.ip()) {
            for name in FORWARDING_HEADERS {
                headers.remove(name);
            }
        }
    }
}

/// Completes a request's own account of how it arrived, after [`TrustedProxies::strip_untrusted`]:
/// `host` from the URI's authority when the client sent none (HTTP/2 sends `:authority`
/// instead), and `x-forwarded-proto: https` when it came over TLS and no trusted proxy
/// already said how the client connected.
pub(crate) fn note_connection<B>(request: &mut Request<B>, over_tls: bool) {
    let authority = request.uri().authority().map(|a| a.as_str().to_owned());
    let headers = request.headers_mut();
    if !headers.contains_key(header::HOST)
        && let Some(value) = authority.and_then(|a| HeaderValue::from_str(&a).ok())
    {
        headers.insert(header::HOST, value);
    }
    if over_tls && !headers.contains_key(X_FORWARDED_PROTO) {
        headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("https"));
    }
}

/// Where the request came from and where the app is mounted.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Forwarding<'a> {
    /// The mount prefix removed from the path (`/hello`, `/visualizations/heatmap`).
    pub prefix: &'a str,
    /// The path the app sees, starting with `/`.
    pub rest: &'a str,
    /// The client's address.
    pub peer: SocketAddr,
    /// The address the client connected to, used as `host` when the client sent none.
    pub local: SocketAddr,
}

/// The request as the guest sees it: path without the prefix (query kept), `host` present,
/// `x-forwarded-prefix` the mount prefix; `x-forwarded-for/-host/-proto` as a trusted proxy
/// sent them (the peer appended to `-for`), else set from the connection.
pub(crate) fn rewrite_for_guest<B>(
    request: Request<B>,
    forwarding: &Forwarding<'_>,
) -> Result<Request<B>, String> {
    let (mut parts, body) = request.into_parts();
    let path_and_query = match parts.uri.query() {
        Some(query) => format!("{}?{query}", forwarding.rest),
        None => forwarding.rest.to_owned(),
    };
    parts.uri = Uri::builder()
        .path_and_query(path_and_query)
        .build()
        .map_err(|error| format!("invalid request path: {error}"))?;
    let headers = &mut parts.headers;
    let host = match headers.get(header::HOST) {
        Some(host) => host.clone(),
        None => {
            let host = HeaderValue::from_str(&forwarding.local.to_string())
                .map_err(|error| format!("invalid host: {error}"))?;
            headers.insert(header::HOST, host.clone());
            host
        }
    };
    let prefix = HeaderValue::from_str(forwarding.prefix)
        .map_err(|error| format!("invalid prefix: {error}"))?;
    headers.insert(X_FORWARDED_PREFIX, prefix);
    if !headers.contains_key(X_FORWARDED_PROTO) {
        headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    }
    if !headers.contains_key(X_FORWARDED_HOST) {
        headers.insert(X_FORWARDED_HOST, host);
    }
    let peer = forwarding.peer.ip().to_string();
    let chain = match headers.get(X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
        Some(earlier) => format!("{earlier}, {peer}"),
        None => peer,
    };
    headers.insert(
        X_FORWARDED_FOR,
        HeaderValue::from_str(&chain).map_err(|error| format!("invalid peer address: {error}"))?,
    );
    Ok(Request::from_parts(parts, body))
}

/// What of the client's credentials a guest may see: the cookies its manifest names, and
/// `Authorization` only when its manifest opts in.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Credentials<'a> {
    /// The cookie names the guest sees.
    pub cookies: &'a [String],
    /// The platform's own cookies, never seen by a guest whatever its manifest names
    /// (`--platform-cookie`: a session is the platform's account, not the app's).
    pub withheld: &'a [String],
    /// Whether it sees `Authorization`.
    pub authorization: bool,
}

/// Removes from `headers` the credentials that are not the guest's: every cookie its
/// manifest does not name (a platform's `sessionid`, another app's), and `Authorization`
/// unless it opted in (`holds_admin_token`: the control plane's token never reaches a guest).
pub(crate) fn keep_guest_credentials(
    headers: &mut HeaderMap,
    credentials: Credentials<'_>,
    holds_admin_token: bool,
) {
    if !credentials.authorization || holds_admin_token {
        headers.remove(header::AUTHORIZATION);
    }
    if !headers.contains_key(header::COOKIE) {
        return;
    }
    let kept: Vec<&str> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .map(str::trim)
        .filter(|pair| {
            let name = pair.split_once('=').map_or(*pair, |(name, _)| name);
            credentials.cookies.iter().any(|allowed| allowed == name)
                && !credentials.withheld.iter().any(|withheld| withheld == name)
        })
        .collect();
    let joined = kept.join("; ");
    headers.remove(header::COOKIE);
    if let Ok(value) = HeaderValue::from_str(&joined)
        && !joined.is_empty()
    {
        headers.insert(header::COOKIE, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_sees_the_rest_of_the_path_and_forwarded_headers() {
        let mut request = Request::builder()
            .uri("/viz/plot?x=1&y=2")
            .header("x-forwarded-for", "6.6.6.6")
            .header("forwarded", "for=6.6.6.6")
            .header("x-real-ip", "6.6.6.6")
            .body(())
            .unwrap();
        let proxies = TrustedProxies::new(vec!["10.0.0.0/8".parse().unwrap()]);
        proxies.strip_untrusted("127.0.0.9:5000".parse().unwrap(), request.headers_mut());
        assert!(!request.headers().contains_key("forwarded"));
        assert!(!request.headers().contains_key("x-real-ip"));
        let forwarding = Forwarding {
            prefix: "/viz",
            rest: "/plot",
            peer: "127.0.0.9:5000".parse().unwrap(),
            local: "127.0.0.1:8080".parse().unwrap(),
        };
        let rewritten = rewrite_for_guest(request, &forwarding).unwrap();
        assert_eq!(rewritten.uri(), "/plot?x=1&y=2");
        let header = |name: &str| rewritten.headers()[name].to_str().unwrap().to_owned();
        assert_eq!(header("x-forwarded-prefix"), "/viz");
        assert_eq!(header("x-forwarded-for"), "127.0.0.9");
        assert_eq!(header("x-forwarded-proto"), "http");
        assert_eq!(header("host"), "127.0.0.1:8080");
        assert_eq!(header("x-forwarded-host"), "127.0.0.1:8080");
    }

    #[test]
    fn a_guest_sees_only_its_own_cookies_and_authorization_when_it_opts_in() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("sessionid=s3cret; theme=dark"),
        );
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("csrftoken=x; viz=1"),
        );
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer t"));
        let mine = ["viz".to_owned(), "theme".to_owned()];
        let withheld = ["sessionid".to_owned()];
        let credentials = Credentials {
            cookies: &mine,
            withheld: &withheld,
            authorization: false,
        };
        keep_guest_credentials(&mut headers, credentials, false);
        assert_eq!(headers[header::COOKIE], "theme=dark; viz=1");
        assert!(!headers.contains_key(header::AUTHORIZATION));

        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_static("sessionid=s3cret"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer t"));
        let asks_for_the_session = ["sessionid".to_owned()];
        let greedy = Credentials {
            cookies: &asks_for_the_session,
            withheld: &withheld,
            authorization: false,
        };
        let mut session = HeaderMap::new();
        session.insert(header::COOKIE, HeaderValue::from_static("sessionid=s3cret"));
        keep_guest_credentials(&mut session, greedy, false);
        assert!(
            !session.contains_key(header::COOKIE),
            "the platform's session, always"
        );
        let opted_in = Credentials {
            cookies: &[],
            withheld: &withheld,
            authorization: true,
        };
        keep_guest_credentials(&mut headers, opted_in, false);
        assert!(!headers.contains_key(header::COOKIE));
        assert_eq!(headers[header::AUTHORIZATION], "Bearer t");
        keep_guest_credentials(&mut headers, opted_in, true);
        assert!(
            !headers.contains_key(header::AUTHORIZATION),
            "the admin token never"
        );
    }
}
