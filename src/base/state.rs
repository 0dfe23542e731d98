//! Files in the state directory: read whole, written atomically.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

/// Reads `dir/name`: `None` when there is no such file; any other error names the file.
pub(crate) fn read(dir: &Path, name: &str) -> io::Result<Option<String>> {
    let path = dir.join(name);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io::Error::new(
            e.kind(),
            format!("cannot read {}: {e}", path.display()),
        )),
    }
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
