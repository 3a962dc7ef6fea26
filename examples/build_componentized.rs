//! Builds the Python and JavaScript example apps (`examples/python-chart`, `examples/js-chart`)
//! into components from a build script, installing the pinned toolchains first: componentize-py
//! (from `requirements.txt`, with pip, into a virtual environment) and componentize-js (from
//! `package-lock.json`, with `npm ci`), both under `target/tools/`. Used by `tests/build.rs`
//! through `#[path]`, so the tests always serve components built from the current source.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Builds both apps into `target/componentized/` and returns `(name, path)` of each.
pub fn build_componentized(root: &Path) -> Vec<(String, PathBuf)> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let out_dir = target.join("componentized");
    std::fs::create_dir_all(&out_dir).expect("creating target/componentized");
    let tools = target.join("tools");
    for path in ["wit", "examples/build_componentized.rs"] {
        watch(&root.join(path));
    }
    vec![
        ("python-chart".into(), build_python(root, &tools, &out_dir)),
        ("js-chart".into(), build_js(root, &tools, &out_dir)),
    ]
}

fn build_python(root: &Path, tools: &Path, out_dir: &Path) -> PathBuf {
    let app = root.join("examples/python-chart");
    for file in ["app.py", "requirements.txt"] {
        watch(&app.join(file));
    }
    // The app imports the SDK (`-p sdk/python` below). Its modules are watched one by one, not
    // the folder: componentize-py writes `__pycache__/` into it, which would re-run the build
    // (a new module is picked up once `__init__.py` imports it).
    let sdk = root.join("sdk/python");
    let modules = std::fs::read_dir(sdk.join("wasmount")).expect("reading sdk/python/wasmount");
    for entry in modules {
        let path = entry.expect("reading sdk/python/wasmount").path();
        if path.extension().is_some_and(|extension| extension == "py") {
            watch(&path);
        }
    }
    let venv = tools.join("python");
    let componentize_py = venv.join("bin/componentize-py");
    let requirements = app.join("requirements.txt");
    let stamp = venv.join("installed-requirements.txt");
    let wanted = std::fs::read_to_string(&requirements).expect("reading requirements.txt");
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(wanted.as_str()) {
        run(
            Command::new("python3").args(["-m", "venv"]).arg(&venv),
            "creating a Python virtual environment (python3 with venv is needed)",
        );
        run(
            Command::new(venv.join("bin/pip"))
                .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
                .arg(&requirements),
            "installing componentize-py with pip",
        );
        std::fs::write(&stamp, wanted).expect("writing the install stamp");
    }
    let out = out_dir.join("python-chart.wasm");
    run(
        Command::new(componentize_py)
            .current_dir(&app)
            .arg("-d")
            .arg(root.join("wit"))
            .args(["-w", "wasi:http/proxy", "componentize", "app", "-p", "."])
            .arg("-p")
            .arg(&sdk)
            .arg("-o")
            .arg(&out),
        "building examples/python-chart with componentize-py",
    );
    out
}

fn build_js(root: &Path, tools: &Path, out_dir: &Path) -> PathBuf {
    let app = root.join("examples/js-chart");
    for file in ["app.js", "package.json", "package-lock.json"] {
        watch(&app.join(file));
    }
    // The toolchain is installed from the app's own lock file, outside the source tree.
    let js_tools = tools.join("js");
    std::fs::create_dir_all(&js_tools).expect("creating target/tools/js");
    let lock = std::fs::read_to_string(app.join("package-lock.json")).expect("reading the lock");
    let installed = js_tools.join("package-lock.json");
    let componentize_js = js_tools.join("node_modules/.bin/componentize-js");
    if std::fs::read_to_string(&installed).ok().as_deref() != Some(lock.as_str())
        || !componentize_js.exists()
    {
        for file in ["package.json", "package-lock.json"] {
            std::fs::copy(app.join(file), js_tools.join(file)).expect("copying the npm manifest");
        }
        run(
            Command::new("npm").current_dir(&js_tools).args([
                "ci",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
            ]),
            "installing componentize-js with npm (node and npm are needed)",
        );
    }
    let out = out_dir.join("js-chart.wasm");
    run(
        Command::new(componentize_js)
            .current_dir(&app)
            .arg("--wit")
            .arg(root.join("wit"))
            .args(["--world-name", "wasi:http/proxy", "-o"])
            .arg(&out)
            .arg("app.js"),
        "building examples/js-chart with componentize-js",
    );
    out
}

fn run(command: &mut Command, what: &str) {
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("{what}: cannot start {command:?}: {error}"));
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn watch(path: &Path) {
    println!("cargo:rerun-if-changed={}", path.display());
}
