//! `--config FILE`: every `serve` setting from a TOML file, keyed by the long flags' names
//! (`listen`, `request-timeout = "30s"`, `tls-cert`, …), and `[apps.NAME]` tables declaring
//! apps to mount. A flag or environment variable wins over the file, the file over the
//! default. Unknown keys are refused with their line.

use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, CommandFactory as _, FromArgMatches as _};
use std::ffi::OsString;
use std::path::Path;

use super::Cli;

/// Why the command line (with its config file) was refused.
pub(crate) enum Refusal {
    /// Clap's own error, help and version included (it prints and exits).
    Clap(clap::Error),
    /// A problem with the config file, as one message.
    Config(String),
}

impl From<clap::Error> for Refusal {
    fn from(error: clap::Error) -> Self {
        Self::Clap(error)
    }
}

/// The commands whose flags a config file may set.
const SERVING_COMMANDS: [&str; 2] = ["serve", "dev"];

/// Parses `argv`, adding the settings of a `serve`/`dev` config file the command line and
/// the environment leave unset.
pub(crate) fn parse(argv: Vec<OsString>) -> Result<Cli, Refusal> {
    let matches = Cli::command().try_get_matches_from(&argv)?;
    let Some((command, sub)) = matches.subcommand() else {
        return Ok(Cli::from_arg_matches(&matches)?);
    };
    let file = match SERVING_COMMANDS.contains(&command) {
        true => sub.get_one::<std::path::PathBuf>("config"),
        false => None,
    };
    let Some(file) = file else {
        return Ok(Cli::from_arg_matches(&matches)?);
    };
    let text = std::fs::read_to_string(file)
        .map_err(|e| Refusal::Config(format!("reading the config file {}: {e}", file.display())))?;
    let (extra, declared) = flags_from(&text, file, command, sub).map_err(Refusal::Config)?;
    let mut full = argv;
    full.extend(extra);
    let matches = Cli::command()
        .try_get_matches_from(&full)
        .map_err(|error| {
            let rendered = error.render().to_string();
            Refusal::Config(format!(
                "{} (with the settings of {})",
                rendered.trim_end(),
                file.display()
            ))
        })?;
    let mut cli = Cli::from_arg_matches(&matches)?;
    if let super::Command::Serve(args)
    | super::Command::Dev(super::develop::DevArgs { serve: args, .. }) = &mut cli.command
    {
        args.declared_apps = declared;
    }
    Ok(cli)
}

/// Checks `file` as `serve --config FILE` would, without starting anything.
///
/// # Errors
///
/// What the server would refuse at start: the file, a key, a value, or the settings together.
pub(crate) fn check(file: &Path) -> anyhow::Result<super::ServeArgs> {
    let argv: Vec<OsString> = ["wasmount", "serve", "--config"]
        .into_iter()
        .map(OsString::from)
        .chain([file.as_os_str().to_owned()])
        .collect();
    match parse(argv) {
        Ok(Cli {
            command: super::Command::Serve(args),
        }) => Ok(args),
        Ok(_) => unreachable!("parsed as serve"),
        Err(Refusal::Config(message)) => Err(anyhow::anyhow!(message)),
        Err(Refusal::Clap(error)) => Err(anyhow::anyhow!(error.render().to_string())),
    }
}

/// The flags for the settings in `text` that `sub` (the parsed command line) leaves unset,
/// and the apps its `[apps.NAME]` tables declare.
fn flags_from(
    text: &str,
    file: &Path,
    command: &str,
    sub: &ArgMatches,
) -> Result<(Vec<OsString>, Vec<DeclaredApp>), String> {
    let table: toml::Table = text
        .parse()
        .map_err(|e| format!("{}: not valid TOML: {e}", file.display()))?;
    let serve = Cli::command();
    let serve = serve
        .find_subcommand(command)
        .expect("serve and dev are commands");
    let (mut flags, mut declared) = (Vec::new(), Vec::new());
    for (key, value) in &table {
        let at = || format!("{}:{}", file.display(), line_of(text, key));
        if key == "apps" && value.is_table() {
            let line_of_app = |name: &str| {
                let line = line_of(text, &format!("apps.{name}"));
                format!("{}:{line}", file.display())
            };
            declared = declared_apps(value, &line_of_app)?;
            // TOML cannot hold `apps = "DIR"` beside `[apps.NAME]`: the folder is
            // `apps.folder` then.
            let folder = value.get(APPS_FOLDER_KEY).and_then(toml::Value::as_str);
            if let Some(folder) = folder.filter(|_| !given_outside(sub, "apps")) {
                flags.push(format!("--apps={folder}").into());
            }
            continue;
        }
        let arg = serve
            .get_arguments()
            .find(|arg| arg.get_long() == Some(key.as_str()) && key != "config" && !arg.is_hide_set())
            .ok_or_else(|| format!("{}: unknown setting `{key}` (the keys are the long flags of `wasmount serve`, without `--`)", at()))?;
        // Given outside the file, it or one it conflicts with (`admin-token` and
        // `admin-token-file`), the file's value gives way.
        let conflict = |a: &clap::Arg, b: &clap::Arg| {
            serve
                .get_arg_conflicts_with(a)
                .iter()
                .any(|c| c.get_id() == b.get_id())
        };
        let overridden = serve
            .get_arguments()
            .filter(|other| {
                other.get_id() == arg.get_id() || conflict(arg, other) || conflict(other, arg)
            })
            .any(|arg| given_outside(sub, arg.get_id().as_str()));
        if overridden {
            continue;
        }
        let takes_value = !matches!(arg.get_action(), ArgAction::SetTrue | ArgAction::SetFalse);
        flags.extend(
            flag_values(key, value, takes_value)
                .map_err(|why| format!("{}: `{key}` {why}", at()))?,
        );
    }
    Ok((flags, declared))
}

/// Whether the argument `id` came from the command line or the environment.
fn given_outside(sub: &ArgMatches, id: &str) -> bool {
    matches!(
        sub.value_source(id),
        Some(ValueSource::CommandLine | ValueSource::EnvVariable)
    )
}

/// `--key=value` for each value (an array repeats the flag); a switch is `true` or `false`.
fn flag_values(key: &str, value: &toml::Value, takes_value: bool) -> Result<Vec<OsString>, String> {
    use toml::Value;
    if !takes_value {
        return match value {
            Value::Boolean(true) => Ok(vec![format!("--{key}").into()]),
            Value::Boolean(false) => Ok(Vec::new()),
            _ => Err("is a switch: write true or false".into()),
        };
    }
    let one = |value: &Value| match value {
        Value::String(text) => Ok(text.clone()),
        Value::Integer(n) => Ok(n.to_string()),
        Value::Float(x) => Ok(x.to_string()),
        Value::Boolean(b) => Ok(b.to_string()),
        _ => Err("must be a string, a number or an array of them".to_owned()),
    };
    let values = match value {
        Value::Array(items) => items.iter().map(one).collect::<Result<Vec<_>, _>>()?,
        single => vec![one(single)?],
    };
    Ok(values
        .into_iter()
        .map(|value| format!("--{key}={value}").into())
        .collect())
}

/// An app a config file declares: `[apps.NAME]` with `path` or `oci`, and the manifest's
/// keys inline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredApp {
    /// The app's name.
    pub name: String,
    /// Where its component comes from.
    pub source: DeclaredSource,
    /// Its settings, as manifest text, when the table gives any.
    pub manifest: Option<String>,
}

/// Where a declared app's component comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeclaredSource {
    /// A file.
    Path(std::path::PathBuf),
    /// A registry reference (`HOST[:PORT]/REPO[:TAG|@sha256:…]`), over plain HTTP or not.
    Oci {
        /// The reference, without `oci://`.
        reference: String,
        /// Whether the registry speaks plain HTTP.
        plain_http: bool,
    },
}

/// In the `apps` table, the apps folder (`--apps`) rather than an app.
const APPS_FOLDER_KEY: &str = "folder";

/// The keys of an `[apps.NAME]` table that are not the manifest's.
const SOURCE_KEYS: [&str; 3] = ["path", "oci", "plain-http"];

/// The apps of the `[apps.NAME]` tables, each with `path` or `oci` and, inline, any of the
/// manifest's keys (checked when the app loads, as a manifest file's are).
fn declared_apps(
    apps: &toml::Value,
    at: &dyn Fn(&str) -> String,
) -> Result<Vec<DeclaredApp>, String> {
    let mut declared = Vec::new();
    for (name, app) in apps.as_table().into_iter().flatten() {
        let fail = |why: &str| format!("{}: `apps.{name}` {why}", at(name));
        if name == APPS_FOLDER_KEY && app.is_str() {
            continue;
        }
        if !crate::apps::names::is_valid_app_name(name) {
            return Err(fail(
                "is not an app name (lowercase letters, digits and `-`)",
            ));
        }
        let table = app
            .as_table()
            .ok_or_else(|| fail("must be a table with `path` or `oci`"))?;
        let text = |key: &str| table.get(key).and_then(toml::Value::as_str);
        let plain_http = table.get("plain-http").and_then(toml::Value::as_bool);
        let source = match (text("path"), text("oci")) {
            (Some(path), None) => DeclaredSource::Path(path.into()),
            (None, Some(reference)) => DeclaredSource::Oci {
                reference: reference.trim_start_matches("oci://").to_owned(),
                plain_http: plain_http.unwrap_or(false),
            },
            _ => {
                return Err(fail(
                    "needs exactly one of `path = \"FILE.wasm\"` and `oci = \"HOST/REPO:TAG\"`",
                ));
            }
        };
        let settings: toml::Table = table
            .iter()
            .filter(|(key, _)| !SOURCE_KEYS.contains(&key.as_str()))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        let manifest = match settings.is_empty() {
            true => None,
            false => Some(toml::to_string(&settings).map_err(|e| fail(&format!("settings: {e}")))?),
        };
        declared.push(DeclaredApp {
            name: name.clone(),
            source,
            manifest,
        });
    }
    Ok(declared)
}

/// The 1-based line where `key` is set at the top of `text` (or its table begins), or 0.
fn line_of(text: &str, key: &str) -> usize {
    let sets = |line: &str| {
        let line = line.trim_start();
        let name = line.trim_start_matches('[').trim_start_matches('"');
        name.strip_prefix(key).is_some_and(|rest| {
            rest.trim_start_matches('"')
                .trim_start()
                .starts_with(['=', '.', ']'])
        })
    };
    text.lines().position(sets).map_or(0, |index| index + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(args: &[&str], file: &str) -> Result<super::super::ServeArgs, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wasmount.toml");
        std::fs::write(&path, file).unwrap();
        let mut argv: Vec<OsString> = vec!["wasmount".into(), "serve".into()];
        argv.extend(args.iter().map(OsString::from));
        argv.push("--config".into());
        argv.push(path.into_os_string());
        match parse(argv) {
            Ok(Cli {
                command: super::super::Command::Serve(args),
            }) => Ok(args),
            Ok(_) => unreachable!(),
            Err(Refusal::Config(message)) => Err(message),
            Err(Refusal::Clap(error)) => Err(error.to_string()),
        }
    }

    #[test]
    fn the_file_sets_what_flags_leave_unset() {
        let file = "listen = \"127.0.0.1:9999\"\nrequest-timeout = \"1s\"\nwatch = true\n\
                    trusted-proxies = [\"10.0.0.0/8\", \"192.168.0.0/16\"]\n";
        let args = parsed(&["--request-timeout", "5s"], file).unwrap();
        assert_eq!(args.listen.to_string(), "127.0.0.1:9999");
        assert_eq!(*args.request_timeout, std::time::Duration::from_secs(5));
        assert!(args.watch);
        assert_eq!(args.trusted_proxies.len(), 2);
    }

    #[test]
    fn a_flag_given_outside_the_file_wins_over_the_file_setting_it_conflicts_with() {
        let file = "admin-token = \"token-from-the-file-0123\"\n";
        let args = parsed(
            &["--admin-token-file", "/run/credentials/admin-token"],
            file,
        )
        .unwrap();
        assert_eq!(args.admin_token, None);
        assert_eq!(
            args.admin_token_file,
            Some("/run/credentials/admin-token".into())
        );
        let file = "admin-token-file = \"/etc/token\"\n";
        let args = parsed(&["--admin-token", "token-from-the-flag-0123"], file).unwrap();
        assert_eq!(args.admin_token_file, None);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused_with_their_line() {
        let unknown =
            parsed(&[], "listen = \"127.0.0.1:0\"\n\nrequest-timout = \"1s\"\n").unwrap_err();
        assert!(
            unknown.contains("wasmount.toml:3: unknown setting `request-timout`"),
            "{unknown}"
        );
        let switch = parsed(&[], "watch = \"yes\"\n").unwrap_err();
        assert!(switch.contains(":1: `watch` is a switch"), "{switch}");
        let value = parsed(&[], "request-timeout = \"soon\"\n").unwrap_err();
        assert!(value.contains("--request-timeout"), "{value}");
        let broken = parsed(&[], "listen = \n").unwrap_err();
        assert!(broken.contains("not valid TOML"), "{broken}");
        let config = parsed(&[], "config = \"other.toml\"\n").unwrap_err();
        assert!(config.contains("unknown setting `config`"), "{config}");
    }

    #[test]
    fn apps_tables_declare_files_and_registry_components_with_settings() {
        let file = "[apps.viz]\npath = \"/srv/viz.wasm\"\n\n[apps.map]\noci = \"oci://reg:5000/t/map:1\"\n\
                    plain-http = true\nroute = \"/tools/map\"\n[apps.map.limits]\nmemory = \"64MiB\"\n";
        let args = parsed(&[], file).unwrap();
        let [map, viz] = args.declared_apps.as_slice() else {
            panic!("{:?}", args.declared_apps)
        };
        assert_eq!(viz.source, DeclaredSource::Path("/srv/viz.wasm".into()));
        assert_eq!(viz.manifest, None);
        let reference = "reg:5000/t/map:1".to_owned();
        assert_eq!(
            map.source,
            DeclaredSource::Oci {
                reference,
                plain_http: true
            }
        );
        let settings = map.manifest.as_deref().unwrap();
        assert!(
            settings.contains("route = \"/tools/map\"") && settings.contains("memory = \"64MiB\""),
            "{settings}"
        );
        let both = parsed(&[], "[apps.x]\npath = \"a.wasm\"\noci = \"r/x:1\"\n").unwrap_err();
        assert!(both.contains("exactly one of"), "{both}");
        let with_folder = parsed(
            &[],
            "[apps]\nfolder = \"/srv/apps\"\n[apps.v]\npath = \"v.wasm\"\n",
        )
        .unwrap();
        assert_eq!(with_folder.apps, std::path::PathBuf::from("/srv/apps"));
        assert_eq!(with_folder.declared_apps.len(), 1);
        let bad_name = parsed(&[], "[apps.X]\npath = \"a.wasm\"\n").unwrap_err();
        assert!(bad_name.contains("not an app name"), "{bad_name}");
        let folder = parsed(&[], "apps = \"/srv/apps\"\n").unwrap();
        assert_eq!(folder.apps, std::path::PathBuf::from("/srv/apps"));
    }
}
