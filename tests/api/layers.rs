//! The layering ARCHITECTURE.md states ("Layers"), checked on the source itself, so that it
//! stays true: the files of each lower layer name no module of the crate above them.

use std::path::{Path, PathBuf};

/// A folder under `src/` and the modules of the crate its code may use besides itself.
const RULES: &[(&str, &[&str])] = &[
    ("model", &[]),
    ("config", &["model"]),
    ("slack", &["model", "config"]),
    ("sources", &["model", "config", "slack"]),
    ("store", &["model", "config"]),
    ("tls", &["model", "config"]),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("a source folder") {
        let path = entry.expect("a folder entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The crate modules a file's code (not its comments) names through `crate::`.
fn crate_modules(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        for (at, _) in code.match_indices("crate::") {
            let name: String = code[at + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            found.push((n + 1, name));
        }
    }
    found
}

#[test]
fn lower_layers_use_nothing_above_them() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut wrong = Vec::new();
    for (layer, allowed) in RULES {
        let mut files = Vec::new();
        rust_files(&src.join(layer), &mut files);
        assert!(!files.is_empty(), "src/{layer} has no files");
        for file in files {
            let text = std::fs::read_to_string(&file).expect("a source file");
            for (line, module) in crate_modules(&text) {
                if module != *layer && !allowed.contains(&module.as_str()) {
                    let shown = file
                        .strip_prefix(&src)
                        .unwrap_or(&file)
                        .display()
                        .to_string();
                    wrong.push(format!("src/{shown}:{line} uses crate::{module}"));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "a lower layer uses one above it (see ARCHITECTURE.md, Layers):\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_check_sees_a_use_of_a_higher_layer() {
    let found = crate_modules("use crate::store::Store;\n// crate::delivery in a comment\n");
    assert_eq!(found, [(1, "store".to_string())]);
}
