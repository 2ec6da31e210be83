//! Files and directories only their owner may read. On a shared jump host everything shadowscope
//! writes (cache, lock, log, session, secrets, block lists, exports, catalog files) names the
//! organisation's users and choices, so it is created 0600 in 0700 directories.
use std::fs::{DirBuilder, OpenOptions};
use std::path::Path;

/// Open options whose created files are mode 0600; the caller adds read/write/create flags.
pub fn owner_only() -> OpenOptions {
    #[allow(unused_mut)]
    let mut o = OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o
}

/// A directory builder whose created directories are mode 0700.
pub fn dir_builder() -> DirBuilder {
    #[allow(unused_mut)]
    let mut b = DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b
}

/// Creates `dir` (and its parents) 0700, and narrows it to 0700 if it existed with looser rights.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    dir_builder().recursive(true).create(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Creates (or truncates) `path` readable by its owner only and writes `bytes`.
pub fn write_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::io::Write::write_all(&mut owner_only().write(true).create(true).truncate(true).open(path)?, bytes)
}
