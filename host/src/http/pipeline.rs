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
//!   the prefix);
//! - **invoke**: one instance runs it (`runtime::invoke`);
//! - **finish**: metrics, and every [`Refusal`] turned into its response in one place.
//!
//! Dev mode wraps this path (`dev::live::Wrap`); it does not branch inside it.

use crate::apps::app::App;
use crate::apps::names::{is_valid_app_name, mount_prefix};
use crate::apps::registry::{Entry, Snapshot};
use crate::http::forwarding::{Forwarding, rewrite_for_guest};
use crate::http::server::Server;
use crate::launches::{INSTANCE_ENV, InUse};
use crate::refusal::Refusal;
use crate::respond::{self, Body};
use crate::runtime::client_body::ClientBody;
use crate::runtime::invoke::invoke;
use crate::runtime::sandbox::Binding;
use http::{Request, Response};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

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
        let (app, guest) = (resolved.app.name().clone(), resolved.app.guest().clone());
        let started = Instant::now();
        let running = guest.metrics().in_flight();
        let response = match self.admit(&resolved, &request) {
            Ok(()) => match self.prepare(request, &resolved, peer) {
                Ok(request) => self.invoke(resolved, request).await,
                Err(refusal) => Err(refusal),
            },
            Err(refusal) => Err(refusal),
        };
        drop(running);
        let response = finish(response);
        guest
            .metrics()
            .request_done(response.status().as_u16(), started.elapsed());
        (response, Some(app))
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
        let app = loaded(&launch.app, entry).await?;
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

    /// Admit: whether the request may run. The app's own limits (body size, concurrency)
    /// are taken in invoke, once the start of the body is in; access checks go here.
    fn admit(
        &self,
        _resolved: &Resolved<'_>,
        _request: &Request<ClientBody>,
    ) -> Result<(), Refusal> {
        Ok(())
    }

    /// Prepare: the request as the guest sees it (path without the prefix, forwarding
    /// headers).
    fn prepare(
        &self,
        request: Request<ClientBody>,
        resolved: &Resolved<'_>,
        peer: SocketAddr,
    ) -> Result<Request<ClientBody>, Refusal> {
        let forwarding = Forwarding {
            prefix: &resolved.prefix,
            rest: resolved.rest,
            peer,
            local: self.local,
        };
        rewrite_for_guest(request, &forwarding).map_err(Refusal::BadRequest)
    }

    /// Invoke: one instance of the app runs the request, with the launch's input when it is
    /// a launch's.
    async fn invoke(
        &self,
        resolved: Resolved<'_>,
        request: Request<ClientBody>,
    ) -> Result<Response<Body>, Refusal> {
        let Resolved { app, launch, .. } = resolved;
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

/// Finish: the guest's response, or the refusal's.
fn finish(response: Result<Response<Body>, Refusal>) -> Response<Body> {
    response.unwrap_or_else(Refusal::into_response)
}
