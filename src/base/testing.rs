//! Helpers shared by the unit tests.

/// Asserts that `text` contains every one of `wants`, showing the whole text if not.
#[track_caller]
pub(crate) fn assert_has(text: &str, wants: &[&str]) {
    for w in wants {
        assert!(text.contains(w), "no {w:?} in:\n{text}");
    }
}
