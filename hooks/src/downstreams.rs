//! How the server tells the hook its other repositories.
//!
//! The deletion and placeholder rules look into the server's other
//! repositories ([`crate::enforce::Context::downstreams`]): a package there
//! may pin a revision of this one. The list grows with the server (about 130
//! bytes a repository), and Linux refuses a single environment string over
//! 128 KiB (`E2BIG`: every push would fail at about 1,000 repositories), so
//! it travels in a file: the server writes `<data_dir>/repositories.json`
//! once its repositories are prepared ([`write`]) and names it to the hook in
//! [`VARIABLE`]; the hook reads it ([`read`]). One writer, one reader, both
//! here.
//!
//! The file is written whole to a temporary file (mode 0600, synced) and
//! renamed into place, so a reader sees the old file or the new one, never a
//! half-written one. A file that cannot be read or parsed refuses the push
//! (the rule it feeds guards against deleting pinned revisions) with a
//! message naming the file; restarting the server writes it again.
//!
//! Hook mode (cadgate installed into another Git host) has no such file:
//! where the host keeps its other repositories is not cadgate's to know, so
//! pins are checked within the repository itself.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use crate::enforce::Downstream;

/// The environment variable naming the file (set by the server for the hook).
pub const VARIABLE: &str = "CADGATE_DOWNSTREAMS_FILE";

/// The file's name in the server's data directory.
pub const FILE_NAME: &str = "repositories.json";

/// The file's format version.
const VERSION: u32 = 1;

/// The largest file [`read`] accepts (about 400,000 repositories).
const MAX_BYTES: u64 = 64 << 20;

/// The file's content.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Listing {
    /// [`VERSION`].
    version: u32,
    /// Every repository of the server.
    repositories: Vec<Downstream>,
}

/// The file could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cadgate's list of repositories {} {detail}; restart the server to write it again", path.display())]
pub struct DownstreamsError {
    path: PathBuf,
    detail: String,
}

/// Write every repository of the server to `<dir>/repositories.json`,
/// atomically (temporary file, fsync, rename, fsync of `dir`); returns its
/// path.
pub fn write(dir: &Path, repositories: &[Downstream]) -> std::io::Result<PathBuf> {
    let path = dir.join(FILE_NAME);
    let temporary = dir.join(format!(".{FILE_NAME}.tmp"));
    let json = serde_json::to_vec(&Listing {
        version: VERSION,
        repositories: repositories.to_vec(),
    })
    .map_err(std::io::Error::other)?;
    let _ = std::fs::remove_file(&temporary);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&temporary)?;
    file.write_all(&json)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temporary, &path)?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(path)
}

/// The repositories listed in the file at `path`, but `except` (the
/// repository being pushed to). Refuses a file that is missing, too large,
/// not the JSON [`write`] writes, or that names a repository by a relative
/// path or without a name or branch.
pub fn read(path: &Path, except: Option<&str>) -> Result<Vec<Downstream>, DownstreamsError> {
    let failed = |detail: String| DownstreamsError {
        path: path.to_path_buf(),
        detail,
    };
    let mut text = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(MAX_BYTES + 1).read_to_end(&mut text))
        .map_err(|e| failed(format!("cannot be read ({e})")))?;
    if text.len() as u64 > MAX_BYTES {
        return Err(failed(format!("is larger than {MAX_BYTES} bytes")));
    }
    let listing: Listing = serde_json::from_slice(&text)
        .map_err(|e| failed(format!("is not a list of repositories ({e})")))?;
    if listing.version != VERSION {
        return Err(failed(format!(
            "has version {}, not {VERSION}",
            listing.version
        )));
    }
    if let Some(bad) = listing
        .repositories
        .iter()
        .find(|r| r.name.is_empty() || r.branch.is_empty() || !r.path.is_absolute())
    {
        return Err(failed(format!(
            "names a repository without a name, a branch or an absolute path ({:?})",
            bad.name
        )));
    }
    Ok(listing
        .repositories
        .into_iter()
        .filter(|r| Some(r.name.as_str()) != except)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("cadgate-downstreams-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn repository(name: &str) -> Downstream {
        Downstream {
            name: name.into(),
            path: PathBuf::from(format!("/data/repositories/{name}.git")),
            branch: "main".into(),
        }
    }

    #[test]
    fn what_is_written_is_read_back_without_the_pushed_repository() {
        let dir = scratch("round-trip");
        let all = vec![repository("a"), repository("b/c"), repository("d")];
        let path = write(&dir, &all).unwrap();
        assert_eq!(path, dir.join(FILE_NAME));
        assert_eq!(
            read(&path, Some("b/c")).unwrap(),
            vec![repository("a"), repository("d")]
        );
        assert_eq!(read(&path, None).unwrap(), all);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // Written again (a restart): replaced whole, no temporary left.
        write(&dir, &all[..1]).unwrap();
        assert_eq!(read(&path, None).unwrap(), all[..1].to_vec());
        assert!(!dir.join(format!(".{FILE_NAME}.tmp")).exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_missing_or_garbled_file_is_refused_with_its_path() {
        let dir = scratch("garbled");
        let path = dir.join(FILE_NAME);
        let missing = read(&path, None).unwrap_err().to_string();
        assert!(missing.contains("cannot be read"), "{missing}");
        assert!(missing.contains(&path.display().to_string()), "{missing}");
        for (content, says) in [
            ("{\"version\":1,\"repositories\":[{\"name\":\"a\"", "is not a list"),
            ("\u{0}\u{1}garbage", "is not a list"),
            ("{\"version\":2,\"repositories\":[]}", "has version 2"),
            (
                "{\"version\":1,\"repositories\":[{\"name\":\"a\",\"path\":\"relative.git\",\"branch\":\"main\"}]}",
                "absolute path",
            ),
            (
                "{\"version\":1,\"repositories\":[{\"name\":\"\",\"path\":\"/a.git\",\"branch\":\"main\"}]}",
                "without a name",
            ),
            (
                "{\"version\":1,\"repositories\":[],\"extra\":true}",
                "is not a list",
            ),
        ] {
            std::fs::write(&path, content).unwrap();
            let refused = read(&path, None).unwrap_err().to_string();
            assert!(refused.contains(says), "{content}: {refused}");
            assert!(refused.contains("restart the server"), "{refused}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
