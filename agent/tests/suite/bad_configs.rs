//! Every file in `tests/bad-configs/` is refused with exactly the error in its
//! `.err` file. A first line `# profile: NAME` selects a profile.
//! `GATEKEEPER_BLESS=1` rewrites the `.err` files (review the diff).

use gatekeeper::config::Config;
use std::path::Path;

#[test]
fn every_bad_config_gives_its_exact_error() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad-configs");
    let bless = std::env::var_os("GATEKEEPER_BLESS").is_some();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 20,
        "the bad-config folder lost files: {}",
        files.len()
    );
    let mut mismatches = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let profile = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# profile: "))
            .map(str::trim);
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let err = match Config::parse(&text, &name, profile) {
            Ok(_) => "(accepted; a bad config must be refused)".to_string(),
            Err(e) => e.to_string(),
        };
        let expected_file = file.with_extension("err");
        if bless {
            std::fs::write(&expected_file, format!("{err}\n")).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_file).unwrap_or_else(|_| {
            panic!(
                "{} is missing (run with GATEKEEPER_BLESS=1)",
                expected_file.display()
            )
        });
        if expected.trim_end() != err {
            mismatches.push(format!(
                "{name}:\n  expected: {}\n  actual:   {err}",
                expected.trim_end()
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}
