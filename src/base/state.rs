//! Files in the state directory: read whole, written atomically.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

/// Reads `dir/name` and parses it with `parse`: `None` when there is no such file. Any
/// other error names the file; one that does not parse is `InvalidData`, saying it is not
/// valid `what` and how to `fix` it.
pub(crate) fn load<T, E: std::fmt::Display>(
    dir: &Path,
    name: &str,
    what: &str,
    fix: &str,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> io::Result<Option<T>> {
    let path = dir.join(name);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            let message = format!("cannot read {}: {e}", path.display());
            return Err(io::Error::new(e.kind(), message));
        }
    };
    parse(&text).map(Some).map_err(|e| {
        let message = format!("{} is not valid {what} ({e}); {fix}", path.display());
        io::Error::new(io::ErrorKind::InvalidData, message)
    })
}

/// Writes `bytes` and a newline to `dir/name` atomically: a temp file `.name.tmp` beside
/// it, fsync, rename, fsync the directory. Creates `dir` when missing. On failure the file
/// is as it was, and no temp file is left behind.
pub(crate) fn write(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{name}.tmp"));
    let written = File::create(&tmp).and_then(|mut f| {
        f.write_all(bytes)?;
        f.write_all(b"\n")?;
        f.sync_all()
    });
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, dir.join(name))) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
