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
    let extra = flags_from(&text, file, command, sub).map_err(Refusal::Config)?;
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
    Ok(Cli::from_arg_matches(&matches)?)
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

/// The flags for the settings in `text` that `sub` (the parsed command line) leaves unset.
fn flags_from(
    text: &str,
    file: &Path,
    command: &str,
    sub: &ArgMatches,
) -> Result<Vec<OsString>, String> {
    let table: toml::Table = text
        .parse()
        .map_err(|e| format!("{}: not valid TOML: {e}", file.display()))?;
    let serve = Cli::command();
    let serve = serve
        .find_subcommand(command)
        .expect("serve and dev are commands");
    let mut flags = Vec::new();
    for (key, value) in &table {
        let at = || format!("{}:{}", file.display(), line_of(text, key));
        if key == "apps" && value.is_table() {
            flags.extend(app_flags(value, &at)?);
            continue;
        }
        let arg = serve
            .get_arguments()
            .find(|arg| arg.get_long() == Some(key.as_str()) && key != "config" && !arg.is_hide_set())
            .ok_or_else(|| format!("{}: unknown setting `{key}` (the keys are the long flags of `wasmount serve`, without `--`)", at()))?;
        let given = matches!(
            sub.value_source(arg.get_id().as_str()),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        );
        if given {
            continue;
        }
        let takes_value = !matches!(arg.get_action(), ArgAction::SetTrue | ArgAction::SetFalse);
        flags.extend(
            flag_values(key, value, takes_value)
                .map_err(|why| format!("{}: `{key}` {why}", at()))?,
        );
    }
    Ok(flags)
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

/// `--app NAME=PATH` for each `[apps.NAME]` table with a `path`.
fn app_flags(apps: &toml::Value, at: &dyn Fn() -> String) -> Result<Vec<OsString>, String> {
    let mut flags = Vec::new();
    for (name, app) in apps.as_table().into_iter().flatten() {
        let table = app
            .as_table()
            .ok_or_else(|| format!("{}: `apps.{name}` must be a table with `path`", at()))?;
        if let Some(unknown) = table.keys().find(|key| key.as_str() != "path") {
            return Err(format!(
                "{}: `apps.{name}.{unknown}` is not supported: an app is declared by `path` \
                 (its settings go in NAME.toml beside the component)",
                at()
            ));
        }
        let path = table
            .get("path")
            .and_then(toml::Value::as_str)
            .ok_or_else(|| format!("{}: `apps.{name}` needs `path = \"FILE.wasm\"`", at()))?;
        flags.push(format!("--app={name}={path}").into());
    }
    Ok(flags)
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
    fn apps_tables_mount_files() {
        let args = parsed(&[], "[apps.viz]\npath = \"/srv/viz.wasm\"\n").unwrap();
        assert_eq!(
            args.external_apps,
            [("viz".to_owned(), "/srv/viz.wasm".into())]
        );
        let inline = "[apps.viz]\npath = \"/srv/viz.wasm\"\nroute = \"/x\"\n";
        let refused = parsed(&[], inline).unwrap_err();
        assert!(
            refused.contains(":1: `apps.viz.route` is not supported"),
            "{refused}"
        );
        let folder = parsed(&[], "apps = \"/srv/apps\"\n").unwrap();
        assert_eq!(folder.apps, std::path::PathBuf::from("/srv/apps"));
    }
}
