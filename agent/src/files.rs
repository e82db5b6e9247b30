//! Files are read as untrusted input: regular files only (a FIFO, a device
//! or a directory is refused before a byte is read, so nothing can make a
//! read wait or run forever), each kind with a size cap, hashed while it is
//! read.

use sha2::{Digest, Sha256};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The largest config file (TOML written by people).
pub const MAX_CONFIG_BYTES: u64 = 4 << 20;
/// The largest gate (`.wasm`) by default; `[runtime] max_gate_size`.
pub const DEFAULT_MAX_GATE_BYTES: u64 = 32 << 20;
/// The largest snapshot or recording by default; `[runtime] max_snapshot_size`.
pub const DEFAULT_MAX_SNAPSHOT_BYTES: u64 = 256 << 20;
/// The largest secret file (an nkey seed).
pub const MAX_SECRET_FILE_BYTES: u64 = 64 << 10;
/// The largest local ledger file.
pub const MAX_LEDGER_FILE_BYTES: u64 = 1 << 30;

/// Why a file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot open: {0}")]
    Open(std::io::Error),
    #[error("not a regular file (a {kind}); only regular files are read")]
    NotRegular { kind: &'static str },
    #[error("{size} bytes, over the {limit}-byte limit for {what}")]
    TooLarge {
        size: u64,
        limit: u64,
        what: &'static str,
    },
    #[error("cannot read: {0}")]
    Read(std::io::Error),
}

impl FileError {
    /// The file does not exist (some callers treat that as empty).
    pub fn is_not_found(&self) -> bool {
        matches!(self, FileError::Open(e) if e.kind() == std::io::ErrorKind::NotFound)
    }
}

/// A file's bytes and their sha256 (hex).
#[derive(Debug)]
pub struct FileBytes {
    pub bytes: Vec<u8>,
    pub sha256: String,
}

/// Reads `path` if it is a regular file of at most `limit` bytes (`what`
/// names the kind of file in the error).
pub fn read_untrusted(path: &Path, limit: u64, what: &'static str) -> Result<FileBytes, FileError> {
    let file = open_untrusted(path, limit, what)?;
    let mut bytes = Vec::with_capacity(file.metadata().map_or(0, |m| m.len() as usize));
    let mut hasher = Sha256::new();
    let mut reader = file.take(limit + 1);
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        let n = reader.read(&mut chunk).map_err(FileError::Read)?;
        if n == 0 {
            break;
        }
        hasher.update(&chunk[..n]);
        bytes.extend_from_slice(&chunk[..n]);
        if bytes.len() as u64 > limit {
            // It grew while being read.
            return Err(FileError::TooLarge {
                size: bytes.len() as u64,
                limit,
                what,
            });
        }
    }
    Ok(FileBytes {
        bytes,
        sha256: hex::encode(hasher.finalize()),
    })
}

/// Opens `path` for reading if it is a regular file of at most `limit`
/// bytes, for callers that stream it (read at most `limit` bytes of it).
pub fn open_untrusted(
    path: &Path,
    limit: u64,
    what: &'static str,
) -> Result<std::fs::File, FileError> {
    // Non-blocking open: opening a FIFO for reading would otherwise wait
    // for a writer. It changes nothing for a regular file.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(FileError::Open)?;
    let meta = file.metadata().map_err(FileError::Open)?;
    if !meta.is_file() {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        let kind = if t.is_dir() {
            "directory"
        } else if t.is_fifo() {
            "FIFO"
        } else if t.is_char_device() {
            "character device"
        } else if t.is_block_device() {
            "block device"
        } else if t.is_socket() {
            "socket"
        } else {
            "special file"
        };
        return Err(FileError::NotRegular { kind });
    }
    if meta.len() > limit {
        return Err(FileError::TooLarge {
            size: meta.len(),
            limit,
            what,
        });
    }
    Ok(file)
}

/// [`read_untrusted`] as UTF-8 text.
pub fn read_untrusted_text(
    path: &Path,
    limit: u64,
    what: &'static str,
) -> Result<String, FileError> {
    let file = read_untrusted(path, limit, what)?;
    String::from_utf8(file.bytes).map_err(|e| {
        FileError::Read(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not UTF-8 text ({e})"),
        ))
    })
}

/// Writes `bytes` and a newline to a temporary file beside `path`, synced,
/// then renames it: a reader never sees half a file.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut text = Vec::with_capacity(bytes.len() + 1);
    text.extend_from_slice(bytes);
    text.push(b'\n');
    write_exactly(path, &text)
}

/// Writes exactly `bytes` to `path` atomically (a temp file in the same
/// directory, synced, then renamed, mode 0644): content-addressed files,
/// whose name is the digest of these bytes. A path that is a symlink or not
/// a regular file (`/dev/stdout`, `/dev/null`, a FIFO) is written in place
/// instead: renaming over it would replace the device or the link.
pub fn write_exactly(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::PermissionsExt as _;
    if std::fs::symlink_metadata(path).is_ok_and(|m| !m.file_type().is_file()) {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(path)?;
        return file.write_all(bytes);
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let mut tmp = tempfile::Builder::new()
        .permissions(std::fs::Permissions::from_mode(0o644))
        .tempfile_in(&dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_go_through_links_and_devices_not_over_them() {
        use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::write(&real, b"old").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        write_atomically(&link, b"new").unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read(&real).unwrap(), b"new\n");
        let null = dir.path().join("null");
        std::os::unix::fs::symlink("/dev/null", &null).unwrap();
        write_atomically(&null, b"gone").unwrap();
        assert!(
            std::fs::metadata("/dev/null")
                .unwrap()
                .file_type()
                .is_char_device()
        );
        let plain = dir.path().join("plain");
        write_atomically(&plain, b"x").unwrap();
        assert_eq!(
            std::fs::metadata(&plain).unwrap().permissions().mode() & 0o777,
            0o644
        );
    }

    #[test]
    fn regular_files_are_read_and_hashed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"abc").unwrap();
        let f = read_untrusted(&p, 10, "test").unwrap();
        assert_eq!(f.bytes, b"abc");
        assert_eq!(
            f.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            read_untrusted(&p, 2, "a test file")
                .unwrap_err()
                .to_string(),
            "3 bytes, over the 2-byte limit for a test file"
        );
    }

    #[test]
    fn fifos_devices_and_directories_are_refused_without_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        assert_eq!(
            read_untrusted(&fifo, 10, "test").unwrap_err().to_string(),
            "not a regular file (a FIFO); only regular files are read"
        );
        assert_eq!(
            read_untrusted(Path::new("/dev/zero"), 10, "test")
                .unwrap_err()
                .to_string(),
            "not a regular file (a character device); only regular files are read"
        );
        assert_eq!(
            read_untrusted(dir.path(), 10, "test")
                .unwrap_err()
                .to_string(),
            "not a regular file (a directory); only regular files are read"
        );
        assert!(
            read_untrusted(&dir.path().join("nope"), 10, "test")
                .unwrap_err()
                .is_not_found()
        );
    }
}
