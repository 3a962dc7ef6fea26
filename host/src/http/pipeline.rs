//! The request path of an app or a launch, read top to bottom, one function per stage:
//!
//! ```text
//! resolve ─▶ admit ─▶ prepare ─▶ invoke ─▶ finish
//! ```
//!
//! - **resolve**: one [`Resolved`] value, decided once from the registry's table (built in
//!   its swap) and the launches: the app, the launch if it is one's, the prefix, the path the
//!   guest sees, and through the app its resolved limits and policies;
//! - **admit**: whether the request may run (the app's limits are taken in invoke, where the
//!   body is prebuffered; access checks sit here);
//! - **prepare**: the request as the guest may see it (forwarding headers, the path without
//!   the prefix, only the credentials its manifest names: `http::forwarding`);
//! - **invoke**: one instance runs it (`runtime::invoke`);
//! - **finish**: the response-header policy (`http::header_policy`), metrics, and every
//!   [`Refusal`] turned into its response in one place.
//!
//! Dev mode wraps this path (`dev::live::Wrap`); it does not branch inside it.

use crate::apps::app::App;
use crate::apps::names::{is_valid_app_name, mount_prefix};
use crate::apps::registry::{Entry, Snapshot};
use crate::config::Access;
use crate::http::forward_auth::Subject;
use crate::http::forwarding::{Credentials, Forwarding, keep_guest_credentials, rewrite_for_guest};
use crate::http::header_policy::confine_to_prefix;
use crate::http::server::Server;
use crate::http::signed_links::{LINK_PARAM, LinkSubject, SESSION_TTL, cookie_name};
use crate::launches::{INSTANCE_ENV, InUse};
use crate::refusal::Refusal;
use crate::respond::{self, Body};
use crate::runtime::client_body::ClientBody;
use crate::runtime::guest::Guest;
use crate::runtime::invoke::invoke;
use crate::runtime::sandbox::Binding;
use http::{Request, Response};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

/// Where a request for a name goes, decided once: everything later stages need.
pub(crate) struct Resolved<'a> {
    /// The app that runs it (a launch's app for a launch).
    app: Arc<App>,
    /// The launch it is for; held while the request runs, so it cannot expire under it.
    launch: Option<InUse>,
    /// The URL path it is mounted under (`/hello`, `/visualizations/viz-3f9a…`).
    prefix: String,
    /// The path the guest sees, starting with `/`.
    rest: &'a str,
}

/// A request for a name, as the route table matched it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Asked<'a> {
    /// The app's or launch's name.
    pub name: &'a str,
    /// The path inside it.
    pub rest: &'a str,
    /// Whether it matched an app's custom route.
    pub custom: bool,
}

impl Server {
    /// Serves a request for an app or a launch through the five stages; returns the
    /// response and the app that served it (none when the name resolved to nothing).
    pub(super) async fn serve_name(
        &self,
        request: Request<ClientBody>,
        peer: SocketAddr,
        snapshot: &Snapshot,
        asked: Asked<'_>,
    ) -> (Response<Body>, Option<Arc<str>>) {
        let resolved = match self.resolve(snapshot, asked).await {
            Ok(resolved) => resolved,
            Err(refusal) => {
                self.metrics.request_unmatched(refusal.status().as_u16());
                return (refusal.into_response(), None);
            }
        };
        let Resolved {
            app,
            launch,
            prefix,
            rest,
        } = resolved;
        let (name, guest) = (app.name().clone(), app.guest().clone());
        let started = Instant::now();
        let running = guest.metrics().in_flight();
        let outcome: Result<Response<Body>, Refusal> = async {
            let mut request = request;
            self.admit(&app, launch.as_ref(), &mut request, peer)
                .await?;
            let request = self.prepare(request, &app, &prefix, rest, peer)?;
            self.invoke(&app, launch, request).await
        }
        .await;
        drop(running);
        let response = finish(outcome, &prefix, &guest);
        guest
            .metrics()
            .request_done(response.status().as_u16(), started.elapsed());
        (response, Some(name))
    }

    /// Resolve: the app or launch named `asked.name` in `snapshot` (the table the route was
    /// matched in), catching up with a shared store once for a name this node does not
    /// know yet.
    async fn resolve<'a>(
        &self,
        snapshot: &Snapshot,
        asked: Asked<'a>,
    ) -> Result<Resolved<'a>, Refusal> {
        let found = self.find(snapshot, asked).await;
        if found.is_err() && !asked.custom && self.read_through(snapshot, asked.name).await {
            let snapshot = self.deployer.registry().snapshot();
            return self.find(&snapshot, asked).await;
        }
        found
    }

    /// What serves `asked.name` in `snapshot`: the app mounted as that name (at its custom
    /// route only, when it has one), or else the launch of that name and its app.
    async fn find<'a>(
        &self,
        snapshot: &Snapshot,
        asked: Asked<'a>,
    ) -> Result<Resolved<'a>, Refusal> {
        let Asked { name, rest, custom } = asked;
        let base = &self.config.base_path;
        if let Some(entry) = snapshot.apps.get(name) {
            let app = loaded(name, entry).await?;
            if !custom && app.manifest().route.is_some() {
                // It is mounted at its own route instead.
                return Err(Refusal::NoSuchName { name: name.into() });
            }
            let prefix = app.prefix(base);
            let launch = None;
            return Ok(Resolved {
                app,
                launch,
                prefix,
                rest,
            });
        }
        let Some(launch) = self.launches.get(name) else {
            return Err(Refusal::NoSuchName { name: name.into() });
        };
        let Some(entry) = snapshot.apps.get(launch.app.as_ref()) else {
            let app = launch.app.to_string();
            return Err(Refusal::LaunchWithoutApp {
                launch: name.into(),
                app,
            });
        };
        // A launch's answer never tells its app's name or load error (as for an unknown name).
        let app = loaded(&launch.app, entry)
            .await
            .map_err(|_| Refusal::LaunchWithoutApp {
                launch: name.into(),
                app: launch.app.to_string(),
            })?;
        let prefix = mount_prefix(base, &launch.name);
        Ok(Resolved {
            app,
            launch: Some(launch),
            prefix,
            rest,
        })
    }

    /// In a cluster, for a name this node does not know: catches up with the store (the
    /// name may have been launched or uploaded on another node a moment ago). Returns
    /// whether it did.
    async fn read_through(&self, snapshot: &Snapshot, name: &str) -> bool {
        let Some(follower) = &self.follower else {
            return false;
        };
        let unknown = !snapshot.apps.contains_key(name) && self.launches.peek(name).is_none();
        unknown && is_valid_app_name(name) && follower.read_through().await
    }

    /// Admit: whether the request may run. A `platform` app or launch asks the platform
    /// (forward auth), whose yes may hand the guest headers; a client's own copies of those
    /// never reach a guest. The app's own limits (body size, concurrency) are taken in
    /// invoke, once the start of the body is in.
    async fn admit(
        &self,
        app: &App,
        launch: Option<&InUse>,
        request: &mut Request<ClientBody>,
        peer: SocketAddr,
    ) -> Result<(), Refusal> {
        if let Some(auth) = &self.forward_auth {
            for name in auth.pass_headers() {
                request.headers_mut().remove(name);
            }
        }
        let access = match launch {
            Some(launch) => launch.gate.access.unwrap_or(match self.forward_auth {
                Some(_) => Access::Platform,
                None => Access::Public,
            }),
            None => app.manifest().access,
        };
        match (access, launch) {
            (Access::Public, _) => return Ok(()),
            (Access::Link, Some(launch)) => return self.admit_link(launch, request),
            (Access::Link, None) => return Err(Refusal::LinkRequired),
            (Access::Platform, _) => {}
        }
        let Some(auth) = &self.forward_auth else {
            return Err(Refusal::NoPlatformToAsk);
        };
        let subject = Subject {
            app: app.name(),
            launch: launch.map(|launch| &*launch.name),
            label: launch.and_then(|launch| launch.gate.label.as_deref()),
            incarnation: launch.map(|launch| &*launch.reuse_key),
        };
        let granted = auth.check(request, peer, subject).await?;
        for (name, value) in granted {
            request.headers_mut().append(name, value);
        }
        Ok(())
    }

    /// A signed-link launch: open with its cookie; a valid link (`?wasmount-link=`) sets
    /// the cookie and redirects to the URL without it; anything else is 401.
    fn admit_link(&self, launch: &InUse, request: &Request<ClientBody>) -> Result<(), Refusal> {
        let subject = LinkSubject {
            launch: &launch.name,
            created_ms: launch.created_ms(),
        };
        let now = SystemTime::now();
        let cookie = cookie_name(&launch.name);
        let held = request
            .headers()
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .any(|(name, token)| name == cookie && self.link_keys.verify(subject, token, now));
        if held {
            return Ok(());
        }
        let uri = request.uri();
        let param = format!("{LINK_PARAM}=");
        let (link, rest): (Vec<_>, Vec<_>) = uri
            .query()
            .unwrap_or_default()
            .split('&')
            .filter(|pair| !pair.is_empty())
            .partition(|pair| pair.starts_with(&param));
        let token = link
            .first()
            .and_then(|pair| pair.split_once('='))
            .map(|(_, token)| token);
        if !token.is_some_and(|token| self.link_keys.verify(subject, token, now)) {
            return Err(Refusal::LinkRequired);
        }
        let location = match rest.is_empty() {
            true => uri.path().to_owned(),
            false => format!("{}?{}", uri.path(), rest.join("&")),
        };
        let base = &self.config.base_path;
        let session = self.link_keys.sign(subject, now + SESSION_TTL);
        let secure = request
            .headers()
            .get("x-forwarded-proto")
            .is_some_and(|proto| proto.as_bytes() == b"https");
        let cookie = format!(
            "{cookie}={session}; Path={}/; Max-Age={}; HttpOnly; SameSite=Lax{}",
            mount_prefix(base, &launch.name),
            SESSION_TTL.as_secs(),
            if secure { "; Secure" } else { "" }
        );
        Err(Refusal::LinkAccepted { location, cookie })
    }

    /// Prepare: the request as the guest sees it: the path without the prefix, forwarding
    /// headers, and of the client's credentials only what its manifest names.
    fn prepare(
        &self,
        mut request: Request<ClientBody>,
        app: &App,
        prefix: &str,
        rest: &str,
        peer: SocketAddr,
    ) -> Result<Request<ClientBody>, Refusal> {
        let manifest = app.manifest();
        let credentials = Credentials {
            cookies: &manifest.cookies,
            withheld: &self.config.platform_cookies,
            authorization: manifest.forward_authorization,
        };
        let holds_admin_token =
            credentials.authorization && self.access.holds_admin_token(request.headers());
        keep_guest_credentials(request.headers_mut(), credentials, holds_admin_token);
        let forwarding = Forwarding {
            prefix,
            rest,
            peer,
            local: self.local,
        };
        rewrite_for_guest(request, &forwarding).map_err(Refusal::BadRequest)
    }

    /// Invoke: one instance of the app runs the request, with the launch's input when it is
    /// a launch's.
    async fn invoke(
        &self,
        app: &App,
        launch: Option<InUse>,
        request: Request<ClientBody>,
    ) -> Result<Response<Body>, Refusal> {
        // Held until the guest is done, response body included.
        let launch = launch.map(Arc::new);
        let binding = launch.as_deref().map(|launch| Binding {
            key: &launch.reuse_key,
            env: [launch.input.env(), (INSTANCE_ENV, &launch.name)],
        });
        let keep = launch
            .clone()
            .map(|launch| launch as Arc<dyn std::any::Any + Send + Sync>);
        invoke(app.guest().clone(), request, binding, keep).await
    }

    /// `B/NAME` → `B/NAME/` (query kept), for whatever is mounted at `name`.
    pub(super) fn redirect(
        &self,
        snapshot: &Snapshot,
        name: &str,
        custom: bool,
        query: Option<&str>,
    ) -> Response<Body> {
        let base = &self.config.base_path;
        let prefix = match snapshot.apps.get(name) {
            Some(Entry::Ready(app)) if custom || app.manifest().route.is_none() => app.prefix(base),
            Some(Entry::Loading(_)) => mount_prefix(base, name),
            None if self.launches.peek(name).is_some() => mount_prefix(base, name),
            _ => return Refusal::NoSuchName { name: name.into() }.into_response(),
        };
        let location = match query {
            Some(query) => format!("{prefix}/?{query}"),
            None => format!("{prefix}/"),
        };
        respond::permanent_redirect(&location)
    }
}

/// The app of `entry`, waiting for it if it is still compiling.
async fn loaded(name: &str, entry: &Entry) -> Result<Arc<App>, Refusal> {
    entry.app().await.map_err(|reason| Refusal::AppFailed {
        name: name.into(),
        reason: reason.to_string(),
    })
}

/// Finish: the refusal's response, or the guest's with the headers that would reach
/// beyond its prefix removed (path mode: every app shares one origin), each removal counted.
fn finish(outcome: Result<Response<Body>, Refusal>, prefix: &str, guest: &Guest) -> Response<Body> {
    let mut response = match outcome {
        Ok(response) => response,
        Err(refusal) => return refusal.into_response(),
    };
    let removed = confine_to_prefix(response.headers_mut(), prefix);
    if !removed.is_empty() {
        guest.metrics().headers_removed(&removed);
    }
    response
}
