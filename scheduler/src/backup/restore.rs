//! The store's backups in the bucket: listed, and one brought back into a new store directory (downloaded,
//! checked against its manifest's SHA-256 and sizes, decompressed, opened as a store). Never over a store.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use probenet_exporters::store::{DB_FILE, SqliteStore, StoreOptions};
use probenet_objects::{Bucket, BucketError};

use super::{FOLDER, Hashing, MANIFEST, Manifest};

/// One backup in the bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Its folder's name, such as `2026-12-06T171500Z`.
    pub name: String,
    /// Its manifest; `None` for an upload that did not finish (or a manifest that cannot be read).
    pub manifest: Option<Manifest>,
}

/// Every backup of the store in the bucket, oldest first.
pub async fn list(bucket: &Bucket) -> Result<Vec<Listed>, BucketError> {
    let names = bucket.folders(FOLDER).await?;
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let manifest = bucket
            .get(&format!("{FOLDER}/{name}/{MANIFEST}"))
            .await?
            .and_then(|body| serde_json::from_slice::<Manifest>(&body).ok());
        out.push(Listed { name, manifest });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Why a restore did not happen.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The bucket failed.
    #[error(transparent)]
    Bucket(#[from] BucketError),
    /// There is no such backup, or none at all.
    #[error("{0}")]
    NotFound(String),
    /// The target holds a store already.
    #[error(
        "{0} holds a store already (probenet.db): restore into a new directory, then point the scheduler at it \
         (--store sqlite:DIR)"
    )]
    Exists(PathBuf),
    /// What was downloaded is not what the manifest says.
    #[error("backup {name}: {what}: the download does not match its manifest; nothing was restored")]
    Corrupt {
        /// The backup.
        name: String,
        /// What differs.
        what: String,
    },
    /// The restored database does not open as a store.
    #[error("backup {name}: the database does not open as a store: {message}; nothing was restored")]
    Store {
        /// The backup.
        name: String,
        /// Why.
        message: String,
    },
    /// A local file could not be written.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// What was restored.
#[derive(Debug, Clone)]
pub struct Restored {
    /// The backup's name.
    pub name: String,
    /// Its manifest.
    pub manifest: Manifest,
    /// The store directory.
    pub dir: PathBuf,
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> RestoreError {
    let what = what.into();
    move |source| RestoreError::Io { what, source }
}

/// Restores the backup `name` (default: the newest complete one) into the store directory `into`, which must
/// not hold a store: `into/probenet.db`, ready for `probenet scheduler --store sqlite:INTO`. The download is
/// checked against the manifest (sizes and SHA-256 of the object and of the database) and the database opened
/// as a store (migrated when it is older, refused when newer) before it is put in place; on any failure
/// nothing is left in `into` but what was there.
pub async fn restore(bucket: &Bucket, name: Option<&str>, into: &Path) -> Result<Restored, RestoreError> {
    if into.join(DB_FILE).exists() {
        return Err(RestoreError::Exists(into.to_owned()));
    }
    let backups = list(bucket).await?;
    let chosen = match name {
        Some(name) => backups.iter().find(|backup| backup.name == name).ok_or_else(|| {
            RestoreError::NotFound(format!(
                "no backup {name} in {}/{FOLDER} (probenet store backups lists them)",
                bucket.url()
            ))
        })?,
        None => backups
            .iter()
            .rev()
            .find(|backup| backup.manifest.is_some())
            .ok_or_else(|| RestoreError::NotFound(format!("no complete backup in {}/{FOLDER}", bucket.url())))?,
    };
    let Some(manifest) = chosen.manifest.clone() else {
        return Err(RestoreError::NotFound(format!(
            "backup {} has no manifest: its upload did not finish; choose another",
            chosen.name
        )));
    };
    let name = chosen.name.clone();
    crate::files::create_private_dir(into).map_err(io(format!("creating {}", into.display())))?;
    let work = into.join(format!(".restore-{name}"));
    let _ = std::fs::remove_dir_all(&work);
    crate::files::create_private_dir(&work).map_err(io(format!("creating {}", work.display())))?;
    let done = fetch(bucket, &name, &manifest, &work, into).await;
    let _ = std::fs::remove_dir_all(&work);
    done?;
    Ok(Restored { name, manifest, dir: into.to_owned() })
}

async fn fetch(bucket: &Bucket, name: &str, manifest: &Manifest, work: &Path, into: &Path) -> Result<(), RestoreError> {
    let corrupt = |what: String| RestoreError::Corrupt { name: name.to_owned(), what };
    if manifest.object.contains('/') || manifest.object.is_empty() {
        return Err(corrupt(format!("object name {:?}", manifest.object)));
    }
    let object = work.join(&manifest.object);
    let key = format!("{FOLDER}/{name}/{}", manifest.object);
    if bucket.get_file(&key, &object).await?.is_none() {
        return Err(RestoreError::NotFound(format!("backup {name}: {} is missing from the bucket", manifest.object)));
    }
    let staged = work.join(DB_FILE);
    let (manifest, object_path, staged_path) = (manifest.clone(), object.clone(), staged.clone());
    let checked = tokio::task::spawn_blocking(move || decompress(&manifest, &object_path, &staged_path))
        .await
        .map_err(|error| RestoreError::Io { what: "decompressing".to_owned(), source: std::io::Error::other(error) })?;
    checked.map_err(corrupt)?;
    // Opened as a store where it lies (migrated if older, refused if newer), then moved into place.
    let store_check = {
        let work = work.to_owned();
        tokio::task::spawn_blocking(move || -> Result<(), String> {
            let store = SqliteStore::open(&work, StoreOptions::default()).map_err(|error| error.to_string())?;
            let problems = store.integrity_check().map_err(|error| error.to_string())?;
            if problems.is_empty() { Ok(()) } else { Err(format!("integrity check: {}", problems.join("; "))) }
        })
        .await
        .map_err(|error| RestoreError::Io {
            what: "opening the restored store".to_owned(),
            source: std::io::Error::other(error),
        })?
    };
    store_check.map_err(|message| RestoreError::Store { name: name.to_owned(), message })?;
    if into.join(DB_FILE).exists() {
        return Err(RestoreError::Exists(into.to_owned()));
    }
    // The store was closed cleanly: its WAL is folded into the database, which is all there is to move.
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(work.join(format!("{DB_FILE}{suffix}")));
    }
    std::fs::rename(&staged, into.join(DB_FILE)).map_err(io(format!("moving the database into {}", into.display())))?;
    crate::files::create_private_dir(&into.join(probenet_exporters::store::ARTIFACT_DIR))
        .map_err(io(format!("creating the artifact directory in {}", into.display())))?;
    Ok(())
}

/// Decompresses `object` into `db`, checking both against the manifest.
fn decompress(manifest: &Manifest, object: &Path, db: &Path) -> Result<(), String> {
    let file = std::fs::File::open(object).map_err(|error| format!("{}: {error}", object.display()))?;
    let mut reader = Hashing::new(std::io::BufReader::new(file));
    // The object's hash first, over the whole file, before anything is decompressed.
    std::io::copy(&mut reader, &mut std::io::sink()).map_err(|error| format!("{}: {error}", object.display()))?;
    let (bytes, sha) = (reader.bytes, reader.hex());
    if bytes != manifest.object_bytes {
        return Err(format!("the object has {bytes} bytes, the manifest says {}", manifest.object_bytes));
    }
    if sha != manifest.object_sha256 {
        return Err(format!("the object's SHA-256 is {sha}, the manifest says {}", manifest.object_sha256));
    }
    let file = std::fs::File::open(object).map_err(|error| format!("{}: {error}", object.display()))?;
    let out = std::fs::File::create(db).map_err(|error| format!("{}: {error}", db.display()))?;
    let mut writer = Hashing::new(std::io::BufWriter::new(out));
    // Bounded by the size the manifest gives (one byte more tells a longer stream).
    let decoder = zstd::stream::Decoder::new(file).map_err(|error| format!("decompressing: {error}"))?;
    std::io::copy(&mut decoder.take(manifest.db_bytes.saturating_add(1)), &mut writer)
        .map_err(|error| format!("decompressing: {error}"))?;
    std::io::Write::flush(&mut writer).map_err(|error| format!("{}: {error}", db.display()))?;
    let (bytes, sha) = (writer.bytes, writer.hex());
    if bytes != manifest.db_bytes {
        return Err(format!("the database has {bytes} bytes, the manifest says {}", manifest.db_bytes));
    }
    if sha != manifest.db_sha256 {
        return Err(format!("the database's SHA-256 is {sha}, the manifest says {}", manifest.db_sha256));
    }
    Ok(())
}
