//! The metrics catalogue (`impush_runtime::catalog::METRICS`) is the truth the README, the
//! dashboard and the alert rules are written against: every metric the code records is in
//! it, every entry is recorded somewhere, and the README lists each one.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use impush_runtime::catalog::METRICS;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Names passed to `counter!`, `gauge!` and `histogram!` anywhere in the crates, except in
/// the catalogue itself.
fn recorded_names() -> BTreeSet<String> {
    let mut files = Vec::new();
    rust_files(&workspace().join("crates"), &mut files);
    let mut names = BTreeSet::new();
    for file in files {
        if file.ends_with("catalog.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for macro_name in ["counter!(", "gauge!(", "histogram!("] {
            for (at, _) in text.match_indices(macro_name) {
                let rest = text[at + macro_name.len()..].trim_start();
                if let Some(quoted) = rest.strip_prefix('"')
                    && let Some(end) = quoted.find('"')
                {
                    names.insert(quoted[..end].to_owned());
                }
            }
        }
    }
    names
}

#[test]
fn every_recorded_metric_is_in_the_catalogue_and_every_entry_is_recorded() {
    let recorded = recorded_names();
    let catalogued: BTreeSet<String> = METRICS.iter().map(|m| m.name.to_owned()).collect();
    assert!(
        recorded.len() > 15,
        "the scan finds the metrics: {recorded:?}"
    );
    let missing: Vec<_> = recorded.difference(&catalogued).collect();
    assert!(
        missing.is_empty(),
        "recorded but not catalogued: {missing:?}"
    );
    let unused: Vec<_> = catalogued.difference(&recorded).collect();
    assert!(
        unused.is_empty(),
        "catalogued but never recorded: {unused:?}"
    );
}

#[test]
fn the_readme_lists_every_metric() {
    let readme = std::fs::read_to_string(workspace().join("README.md")).unwrap();
    for metric in METRICS {
        assert!(
            readme.contains(&format!("`{}`", metric.name)),
            "README does not list {}",
            metric.name
        );
    }
}
