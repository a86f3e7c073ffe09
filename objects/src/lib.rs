//! The object store where probenet keeps what must outlive a machine: artifacts, the archive of old results and
//! backups. One [`Bucket`] over the `object_store` crate (S3 and S3-compatible servers, GCS, Azure, a
//! directory), opened from the config's `objects` section, with every key under the configured prefix.
//!
//! Errors name the bucket and what went wrong in words a user can act on ("the bucket refused the keys"),
//! never a key or a signed URL.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt as _;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt as _, PutPayload};
use probenet_checks::config::objects::{Objects, Provider};

pub use probenet_checks::config::objects::Objects as Spec;

/// How long one request may take (bodies here are at most a few MiB, except backups, which use
/// [`Bucket::put_file`]).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Retries of one request on a server error or a broken connection; a bucket that stays down fails fast and
/// the caller keeps its data (artifacts are spooled on disk, the archive waits for the next pass).
const RETRIES: usize = 2;
/// The longest a request and its retries may take together.
const RETRY_TIMEOUT: Duration = Duration::from_secs(20);

/// What went wrong with the bucket.
#[derive(Debug, thiserror::Error)]
pub enum BucketError {
    /// The settings cannot make a client (a bad endpoint, an unreadable secret or CA file).
    #[error("objects {url}: {message}")]
    Settings {
        /// The bucket's URL.
        url: String,
        /// Why.
        message: String,
    },
    /// The keys were refused.
    #[error(
        "objects {url}: the bucket refused the keys ({code}): check access_key_id and secret_access_key, and that the key may read and write the bucket"
    )]
    Denied {
        /// The bucket's URL.
        url: String,
        /// The server's error code, such as `InvalidAccessKeyId` or `AccessDenied`.
        code: String,
    },
    /// The bucket does not exist.
    #[error("objects {url}: no such bucket: create it first, or check the URL")]
    NoBucket {
        /// The bucket's URL.
        url: String,
    },
    /// Anything else: the server is unreachable or answers with an error.
    #[error("objects {url}: {what}: {message}")]
    Failed {
        /// The bucket's URL.
        url: String,
        /// What was being done.
        what: String,
        /// The error.
        message: String,
    },
}

/// One object listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Its key, relative to the bucket's prefix.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
    /// When it was last written, in ms since the Unix epoch.
    pub modified_ms: i64,
}

/// A bucket and a prefix: every key given to its methods is relative to the prefix.
#[derive(Clone)]
pub struct Bucket {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    url: String,
}

impl std::fmt::Debug for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bucket").field("url", &self.url).finish_non_exhaustive()
    }
}

impl Bucket {
    /// Builds the client for `spec`, resolving its secret references; every secret value read is pushed to
    /// `secrets` (for redaction). Does no I/O beyond reading secret and CA files: see [`Bucket::verify`].
    pub fn open(spec: &Objects, secrets: &mut Vec<String>) -> Result<Self, BucketError> {
        let url = spec.url.clone();
        let settings = |message: String| BucketError::Settings { url: url.clone(), message };
        let mut resolve = |template: &Option<probenet_checks::secret::Template>| {
            template.as_ref().map(|template| template.resolve(secrets).map(|value| value.trim().to_owned())).transpose()
        };
        let mut client = object_store::ClientOptions::new()
            .with_timeout(REQUEST_TIMEOUT)
            .with_connect_timeout(CONNECT_TIMEOUT)
            .with_allow_http(spec.endpoint.as_deref().is_some_and(|endpoint| endpoint.starts_with("http://")));
        if let Some(path) = &spec.ca_file {
            let pem = std::fs::read(path).map_err(|error| settings(format!("ca_file {}: {error}", path.display())))?;
            let certificate = object_store::Certificate::from_pem(&pem)
                .map_err(|error| settings(format!("ca_file {}: {error}", path.display())))?;
            client = client.with_root_certificate(certificate);
        }
        let retry = object_store::RetryConfig {
            max_retries: RETRIES,
            retry_timeout: RETRY_TIMEOUT,
            ..object_store::RetryConfig::default()
        };
        let store: Arc<dyn ObjectStore> = match spec.provider {
            Provider::S3 => {
                let mut builder = object_store::aws::AmazonS3Builder::from_env()
                    .with_bucket_name(&spec.bucket)
                    .with_client_options(client)
                    .with_retry(retry)
                    .with_virtual_hosted_style_request(!spec.path_style)
                    .with_region(spec.region.clone().unwrap_or_else(|| "us-east-1".to_owned()));
                if let Some(endpoint) = &spec.endpoint {
                    builder = builder.with_endpoint(endpoint);
                }
                let key_id = resolve(&spec.access_key_id).map_err(|error| settings(error.to_string()))?;
                let secret = resolve(&spec.secret_access_key).map_err(|error| settings(error.to_string()))?;
                if let (Some(key_id), Some(secret)) = (key_id, secret) {
                    builder = builder.with_access_key_id(key_id).with_secret_access_key(secret);
                }
                if let Some(token) = resolve(&spec.session_token).map_err(|error| settings(error.to_string()))? {
                    builder = builder.with_token(token);
                }
                Arc::new(builder.build().map_err(|error| settings(error.to_string()))?)
            }
            Provider::Gcs => {
                let mut builder = object_store::gcp::GoogleCloudStorageBuilder::from_env()
                    .with_bucket_name(&spec.bucket)
                    .with_client_options(client)
                    .with_retry(retry);
                if let Some(key) = resolve(&spec.service_account_key).map_err(|error| settings(error.to_string()))? {
                    builder = builder.with_service_account_key(key);
                }
                Arc::new(builder.build().map_err(|error| settings(error.to_string()))?)
            }
            Provider::Azure => {
                let mut builder = object_store::azure::MicrosoftAzureBuilder::from_env()
                    .with_container_name(&spec.bucket)
                    .with_client_options(client)
                    .with_retry(retry);
                if let Some(account) = &spec.account {
                    builder = builder.with_account(account);
                }
                if let Some(key) = resolve(&spec.access_key).map_err(|error| settings(error.to_string()))? {
                    builder = builder.with_access_key(key);
                }
                Arc::new(builder.build().map_err(|error| settings(error.to_string()))?)
            }
            Provider::File => {
                std::fs::create_dir_all(&spec.bucket)
                    .map_err(|error| settings(format!("creating {}: {error}", spec.bucket)))?;
                Arc::new(
                    object_store::local::LocalFileSystem::new_with_prefix(&spec.bucket)
                        .map_err(|error| settings(error.to_string()))?
                        .with_automatic_cleanup(true),
                )
            }
        };
        Ok(Self { store, prefix: spec.prefix.clone(), url })
    }

    /// The bucket's URL, as written in the config (it holds no secret).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Checks that the bucket answers and takes the keys: writes, reads back and deletes a small object.
    pub async fn verify(&self) -> Result<(), BucketError> {
        let key = format!(".probenet/verify-{}", std::process::id());
        let body = Bytes::from_static(b"probenet checks that it may write here\n");
        self.put(&key, body.clone()).await?;
        let read = self.get(&key).await?;
        if read.as_ref() != Some(&body) {
            return Err(self.failed("verifying", "an object written could not be read back".to_owned()));
        }
        self.delete(&key).await
    }

    /// Writes an object (replacing any with the same key).
    pub async fn put(&self, key: &str, data: Bytes) -> Result<(), BucketError> {
        let path = self.path(key)?;
        self.store
            .put(&path, PutPayload::from_bytes(data))
            .await
            .map_err(|error| self.error(&format!("writing {key}"), error))?;
        Ok(())
    }

    /// Writes a file as an object, in parts (for files of any size, such as backups).
    pub async fn put_file(&self, key: &str, file: &std::path::Path) -> Result<u64, BucketError> {
        use tokio::io::AsyncReadExt as _;
        const PART: usize = 8 << 20;
        let path = self.path(key)?;
        let what = format!("writing {key}");
        let mut source = tokio::fs::File::open(file)
            .await
            .map_err(|error| self.failed(&what, format!("{}: {error}", file.display())))?;
        let mut upload = self.store.put_multipart(&path).await.map_err(|error| self.error(&what, error))?;
        let mut total = 0_u64;
        loop {
            let mut part = Vec::with_capacity(PART);
            let read = (&mut source)
                .take(PART as u64)
                .read_to_end(&mut part)
                .await
                .map_err(|error| self.failed(&what, format!("{}: {error}", file.display())));
            match read {
                Ok(0) => break,
                Ok(count) => {
                    total += count as u64;
                    if let Err(error) = upload.put_part(PutPayload::from(part)).await {
                        let _ = upload.abort().await;
                        return Err(self.error(&what, error));
                    }
                }
                Err(error) => {
                    let _ = upload.abort().await;
                    return Err(error);
                }
            }
        }
        upload.complete().await.map_err(|error| self.error(&what, error))?;
        Ok(total)
    }

    /// Reads an object; `None` when there is none with this key.
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>, BucketError> {
        let path = self.path(key)?;
        let what = format!("reading {key}");
        match self.store.get(&path).await {
            Ok(got) => got.bytes().await.map(Some).map_err(|error| self.error(&what, error)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(error) => Err(self.error(&what, error)),
        }
    }

    /// Reads an object into a file (for objects of any size).
    pub async fn get_file(&self, key: &str, file: &std::path::Path) -> Result<Option<u64>, BucketError> {
        use tokio::io::AsyncWriteExt as _;
        let path = self.path(key)?;
        let what = format!("reading {key}");
        let got = match self.store.get(&path).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(error) => return Err(self.error(&what, error)),
        };
        let mut out = tokio::fs::File::create(file)
            .await
            .map_err(|error| self.failed(&what, format!("{}: {error}", file.display())))?;
        let mut stream = got.into_stream();
        let mut total = 0_u64;
        while let Some(chunk) = stream.try_next().await.map_err(|error| self.error(&what, error))? {
            total += chunk.len() as u64;
            out.write_all(&chunk).await.map_err(|error| self.failed(&what, format!("{}: {error}", file.display())))?;
        }
        out.sync_all().await.map_err(|error| self.failed(&what, format!("{}: {error}", file.display())))?;
        Ok(Some(total))
    }

    /// Every object whose key starts with the folder `prefix` (`a/b` lists `a/b/...`), in key order.
    pub async fn list(&self, prefix: &str) -> Result<Vec<Listed>, BucketError> {
        let path = self.path(prefix)?;
        let what = format!("listing {prefix}");
        let metas: Vec<object_store::ObjectMeta> =
            self.store.list(Some(&path)).try_collect().await.map_err(|error| self.error(&what, error))?;
        let mut listed: Vec<Listed> = metas
            .into_iter()
            .filter_map(|meta| {
                let key = self.relative(&meta.location)?;
                Some(Listed { key, size: meta.size, modified_ms: meta.last_modified.timestamp_millis() })
            })
            .collect();
        listed.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(listed)
    }

    /// The folders directly under the folder `prefix` (their names only), in order.
    pub async fn folders(&self, prefix: &str) -> Result<Vec<String>, BucketError> {
        let path = self.path(prefix)?;
        let listed = self
            .store
            .list_with_delimiter(Some(&path))
            .await
            .map_err(|error| self.error(&format!("listing {prefix}"), error))?;
        let mut names: Vec<String> =
            listed.common_prefixes.iter().filter_map(|folder| folder.filename().map(str::to_owned)).collect();
        names.sort();
        Ok(names)
    }

    /// Deletes an object; deleting one that is not there is not an error.
    pub async fn delete(&self, key: &str) -> Result<(), BucketError> {
        let path = self.path(key)?;
        match self.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(self.error(&format!("deleting {key}"), error)),
        }
    }

    /// Deletes every object under the folder `prefix`; returns how many.
    pub async fn delete_folder(&self, prefix: &str) -> Result<usize, BucketError> {
        let listed = self.list(prefix).await?;
        for object in &listed {
            self.delete(&object.key).await?;
        }
        Ok(listed.len())
    }

    fn path(&self, key: &str) -> Result<ObjectPath, BucketError> {
        let full = if self.prefix.is_empty() { key.to_owned() } else { format!("{}/{key}", self.prefix) };
        ObjectPath::parse(&full).map_err(|error| self.failed(key, error.to_string()))
    }

    fn relative(&self, location: &ObjectPath) -> Option<String> {
        let full = location.as_ref();
        if self.prefix.is_empty() {
            return Some(full.to_owned());
        }
        full.strip_prefix(&self.prefix)?.strip_prefix('/').map(str::to_owned)
    }

    fn failed(&self, what: &str, message: String) -> BucketError {
        BucketError::Failed { url: self.url.clone(), what: what.to_owned(), message }
    }

    fn error(&self, what: &str, error: object_store::Error) -> BucketError {
        let url = self.url.clone();
        let text = error.to_string();
        if let Some(code) = DENIED.iter().find(|code| text.contains(*code)) {
            return BucketError::Denied { url, code: (*code).to_owned() };
        }
        if matches!(error, object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. }) {
            return BucketError::Denied { url, code: "403".to_owned() };
        }
        if text.contains("NoSuchBucket") {
            return BucketError::NoBucket { url };
        }
        BucketError::Failed { url, what: what.to_owned(), message: brief(&text) }
    }
}

/// The S3 error codes that mean the keys were refused.
const DENIED: &[&str] =
    &["InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken", "ExpiredToken"];

/// An error's text, on one line and bounded (servers may answer with long bodies).
fn brief(text: &str) -> String {
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() > 300 { format!("{}...", line.chars().take(300).collect::<String>()) } else { line }
}
