//! The server's layout rules, checked on its source: SQL and rusqlite only in `store/`, and the
//! domain never reaching into the web layer. A new module that breaks one fails here with the
//! file and line to move.

use std::{fs, path::Path};

/// Every `.rs` file under `dir`, with its path relative to `src/`.
fn sources(dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let relative = path
                .strip_prefix(concat!(env!("CARGO_MANIFEST_DIR"), "/src/"))
                .unwrap()
                .to_string_lossy()
                .into_owned();
            out.push((relative, fs::read_to_string(&path).unwrap()));
        }
    }
}

fn all_sources() -> Vec<(String, String)> {
    let mut out = Vec::new();
    sources(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut out);
    assert!(out.len() > 20, "found the sources");
    out
}

/// Lines of `text` that look like SQL statements (in string literals, where SQL lives).
fn sql_lines(text: &str) -> Vec<(usize, &str)> {
    const STATEMENTS: [&str; 7] = [
        "SELECT ",
        "INSERT INTO",
        "UPDATE ",
        "DELETE FROM",
        "SAVEPOINT",
        "CREATE TABLE",
        "PRAGMA",
    ];
    text.lines()
        .enumerate()
        .filter(|(_, line)| line.contains('"') && STATEMENTS.iter().any(|s| line.contains(s)))
        .map(|(i, line)| (i + 1, line))
        .collect()
}

#[test]
fn only_the_store_touches_sqlite() {
    let mut offences = Vec::new();
    for (file, text) in all_sources() {
        if file.starts_with("store/") {
            continue;
        }
        for (n, line) in text.lines().enumerate() {
            if line.contains("rusqlite") {
                offences.push(format!("{file}:{}: {}", n + 1, line.trim()));
            }
        }
        for (n, line) in sql_lines(&text) {
            offences.push(format!("{file}:{n}: {}", line.trim()));
        }
    }
    assert!(
        offences.is_empty(),
        "SQL or rusqlite outside server/src/store/ (move it into the store module of its table):\n{}",
        offences.join("\n")
    );
}

#[test]
fn the_domain_never_imports_the_web_layer() {
    let mut offences = Vec::new();
    for (file, text) in all_sources() {
        if file.starts_with("web/") || file == "lib.rs" {
            continue;
        }
        for (n, line) in text.lines().enumerate() {
            if line.contains("crate::web") || line.contains("super::web") {
                offences.push(format!("{file}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        offences.is_empty(),
        "modules outside web/ that import it:\n{}",
        offences.join("\n")
    );
}

/// The check itself finds what it is meant to find.
#[test]
fn the_sql_detector_sees_a_statement() {
    let sample = "let x = conn.query_row(\"SELECT 1 FROM t\", [], f);\nlet y = 1;";
    assert_eq!(sql_lines(sample).len(), 1);
    assert!(sql_lines("// SELECT in a comment without quotes").is_empty());
}
