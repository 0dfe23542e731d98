//! Names as operators write them in config and API paths.

/// A profile or zone name as DNS matches it: trimmed, lowercase, with a trailing dot.
pub fn normalize_name(name: &str) -> String {
    let mut s = name.trim().to_ascii_lowercase();
    if !s.ends_with('.') {
        s.push('.');
    }
    s
}
