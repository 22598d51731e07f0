//! Tidy checks over the repository, run as ordinary tests (rust-analyzer's `tidy.rs` habit):
//! the architecture invariants that a reviewer would otherwise have to remember.

use std::fs;
use std::path::{Path, PathBuf};

use xtask::prereq::{Install, PREREQUISITES};
use xtask::{workspace_root, PROTOCOL_CRATES};

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Every crate folder under crates/ with its parsed manifest.
fn crates() -> Vec<(PathBuf, toml::Table)> {
    let mut out = Vec::new();
    for entry in fs::read_dir(workspace_root().join("crates")).expect("crates/") {
        let dir = entry.expect("dir entry").path();
        let manifest = dir.join("Cargo.toml");
        if manifest.is_file() {
            let table: toml::Table = read(&manifest).parse().expect("manifest parses");
            out.push((dir, table));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn package_name(manifest: &toml::Table) -> &str {
    manifest["package"]["name"].as_str().expect("package.name")
}

#[test]
fn protocol_crates_depend_on_nothing_in_the_workspace() {
    let all = crates();
    let names: Vec<&str> = all.iter().map(|(_, m)| package_name(m)).collect();
    for krate in PROTOCOL_CRATES {
        let (dir, manifest) = all
            .iter()
            .find(|(_, m)| package_name(m) == *krate)
            .expect("protocol crate exists");
        let deps = manifest.get("dependencies").and_then(|d| d.as_table());
        for (dep, spec) in deps.into_iter().flatten() {
            assert!(
                !names.contains(&dep.as_str()),
                "{krate} depends on workspace crate {dep}"
            );
            assert!(
                spec.get("path").is_none(),
                "{krate} has a path dependency {dep} ({})",
                dir.display()
            );
        }
    }
}

#[test]
fn protocol_crates_are_no_std() {
    for (dir, manifest) in crates() {
        if PROTOCOL_CRATES.contains(&package_name(&manifest)) {
            let lib = read(&dir.join("src/lib.rs"));
            assert!(
                lib.contains("#![no_std]"),
                "{} is not no_std",
                dir.display()
            );
        }
    }
}

#[test]
fn every_crate_has_a_crate_doc_and_is_in_the_code_map() {
    let architecture = read(&workspace_root().join("ARCHITECTURE.md"));
    for (dir, manifest) in crates() {
        let root = ["src/lib.rs", "src/main.rs"]
            .iter()
            .map(|f| dir.join(f))
            .find(|p| p.is_file())
            .expect("a crate root");
        assert!(
            read(&root).trim_start().starts_with("//!"),
            "{} has no //! crate doc",
            root.display()
        );
        let folder = dir
            .file_name()
            .and_then(|f| f.to_str())
            .expect("folder name");
        assert!(
            architecture.contains(&format!("crates/{folder}")),
            "ARCHITECTURE.md does not map crates/{folder} ({})",
            package_name(&manifest)
        );
    }
}

#[test]
fn ci_installs_every_system_prerequisite_and_runs_the_readme_test_command() {
    let ci = read(&workspace_root().join(".ci/run"));
    assert!(
        ci.contains("apt-get update"),
        ".ci/run does not run apt-get update"
    );
    for p in PREREQUISITES {
        match p.install {
            Install::Apt(package) => {
                assert!(ci.contains(package), ".ci/run does not install {package}")
            }
            Install::RustupTarget(target) => assert!(
                ci.contains(&format!("rustup target add {target}")),
                ".ci/run does not add {target}"
            ),
            Install::RustupComponent(_) | Install::Cargo(_) => {}
        }
    }
    let readme = read(&workspace_root().join("README.md"));
    for command in ["cargo xtask hil", "cargo xtask test"] {
        assert!(readme.contains(command), "README.md lacks `{command}`");
    }
    assert!(
        ci.contains("cargo xtask test"),
        ".ci/run does not run the README's test command"
    );
}

/// Every string under a key `env` in `value` (the PIN sources `{ env = "VARIABLE" }`).
fn env_sources(value: &toml::Value, out: &mut Vec<String>) {
    match value {
        toml::Value::Table(table) => {
            for (key, v) in table {
                match (key.as_str(), v) {
                    ("env", toml::Value::String(name)) => out.push(name.clone()),
                    _ => env_sources(v, out),
                }
            }
        }
        toml::Value::Array(items) => items.iter().for_each(|v| env_sources(v, out)),
        _ => {}
    }
}

#[test]
fn the_nightly_hil_workflow_runs_xtask_hil_on_a_rig_and_keeps_the_report() {
    let workflow = read(&workspace_root().join(".github/workflows/hil-nightly.yml"));
    assert!(
        workflow.contains("cargo xtask hil --rig \"rig/${RIG}.toml\""),
        "hil-nightly.yml does not run `cargo xtask hil --rig rig/<name>.toml`"
    );
    assert!(workflow.contains("runs-on: [self-hosted, linux, \"rig-${{ matrix.rig }}\"]"));
    let profile = xtask::hil::nextest_profile(xtask::rigfile::Backend::Real);
    let junit = format!("path: target/nextest/{profile}/junit.xml");
    assert!(
        workflow.contains(&junit),
        "hil-nightly.yml does not upload {junit}"
    );
    let upload = workflow
        .split("- name: ")
        .find(|step| step.contains("actions/upload-artifact"))
        .expect("an upload step");
    assert!(
        upload.contains("if: always()"),
        "the JUnit report must be uploaded when the run fails too"
    );
    // The example rig's PINs read from the environment reach the run from secrets.
    let lab: toml::Value = read(&workspace_root().join("rig/example-lab.toml"))
        .parse()
        .expect("example-lab.toml parses");
    let mut variables = Vec::new();
    env_sources(&lab, &mut variables);
    assert!(
        !variables.is_empty(),
        "example-lab.toml reads no PIN from the environment"
    );
    for variable in variables {
        let mapping = format!("{variable}: ${{{{ secrets.{variable} }}}}");
        assert!(
            workflow.contains(&mapping),
            "hil-nightly.yml does not map the secret {variable} (`{mapping}`)"
        );
    }
}
