//! Interop: BIND's `named-checkzone` accepts every zone file the repo ships, so the files
//! are portable RFC 1035 master files and not only something signpost's reader accepts.
//! Needs `--features interop`.

mod common;

use std::path::Path;
use std::process::Command;

/// Runs `named-checkzone ZONE FILE`; returns (success, output).
fn checkzone(zone: &str, file: &Path) -> (bool, String) {
    let out = Command::new(common::tool("named-checkzone"))
        .arg(zone)
        .arg(file)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn named_checkzone_accepts_every_zone_in_zones_dir() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("zones");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "zone"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no zone files in {}", dir.display());
    for f in &files {
        // signpost serves <zone>.zone as <zone>.
        let zone = f.file_stem().unwrap().to_str().unwrap();
        let (ok, out) = checkzone(zone, f);
        assert!(ok, "named-checkzone rejects {}:\n{out}", f.display());
        assert!(out.contains("OK"), "{out}");
    }
}

/// The check above can fail: a zone BIND rejects (CNAME and other data) is rejected.
#[test]
fn named_checkzone_rejects_a_broken_zone() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("broken.example.zone");
    std::fs::write(
        &f,
        "$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 1209600 60\n@ NS ns1\nns1 A 192.0.2.1\n\
         www CNAME ns1\nwww A 192.0.2.2\n",
    )
    .unwrap();
    let (ok, out) = checkzone("broken.example", &f);
    assert!(
        !ok,
        "named-checkzone accepted a CNAME with other data:\n{out}"
    );
}
