//! The command line as an administrator meets it. (Having an integration test here also makes
//! `cargo test` build the `coper-server` binary that the end-to-end tests in `tests/` start.)

use std::process::Command;

fn coper_server() -> Command {
    Command::new(env!("CARGO_BIN_EXE_coper-server"))
}

#[test]
fn serve_help_documents_every_flag_and_its_environment_variable() {
    let out = coper_server().args(["serve", "--help"]).output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for expected in [
        "--listen",
        "COPER_LISTEN",
        "--data-dir",
        "COPER_DATA_DIR",
        "--config",
        "--demo",
    ] {
        assert!(help.contains(expected), "{expected} missing from:\n{help}");
    }
}

#[test]
fn an_unreadable_config_file_is_reported_with_its_path() {
    let out = coper_server()
        .args(["serve", "--config", "/nonexistent/coper.toml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("/nonexistent/coper.toml"), "{err}");
}
