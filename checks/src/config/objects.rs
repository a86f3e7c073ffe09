//! The `objects` section: the bucket where what must outlive a machine goes (screenshots and other artifacts,
//! the archive of old results, backups of the embedded store).

use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use super::{Ctx, Path};
use crate::secret::Template;
use crate::yaml::NodeKind;

/// The object store (a bucket) shared by every scheduler replica.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Objects")]
pub struct RawObjects {
    /// Where: `s3://BUCKET/PREFIX` (AWS S3 or any S3-compatible server), `gs://BUCKET/PREFIX` (Google Cloud
    /// Storage), `az://CONTAINER/PREFIX` (Azure Blob Storage) or `file:///DIR` (a local or mounted directory).
    /// The prefix is optional; everything probenet writes goes under it.
    pub url: String,
    /// S3: the endpoint of an S3-compatible server, such as `https://minio.example.com:9000` (default: AWS).
    pub endpoint: Option<String>,
    /// S3: the region (default `us-east-1`; Garage's is `garage`).
    pub region: Option<String>,
    /// S3: address the bucket in the path (`https://ENDPOINT/BUCKET/KEY`) rather than in the host name
    /// (default `true` when `endpoint` is set, `false` for AWS).
    pub path_style: Option<bool>,
    /// S3: the access key id, as a secret reference (`${env:NAME}` or `${file:PATH}`). Without keys, the
    /// standard `AWS_*` environment variables and the instance's role are used.
    pub access_key_id: Option<String>,
    /// S3: the secret access key, as a secret reference.
    pub secret_access_key: Option<String>,
    /// S3: a session token, as a secret reference, for temporary keys.
    pub session_token: Option<String>,
    /// GCS: the service account's JSON key, as a secret reference (usually `${file:PATH}`). Without it, the
    /// standard `GOOGLE_*` environment variables and the instance's account are used.
    pub service_account_key: Option<String>,
    /// Azure: the storage account name.
    pub account: Option<String>,
    /// Azure: the storage account's access key, as a secret reference.
    pub access_key: Option<String>,
    /// A PEM file of certificate authorities to trust for the endpoint, besides the system's.
    pub ca_file: Option<String>,
    /// Raw results older than this are written to the bucket's archive (compressed, by day and check), such as
    /// `1d`; `probenet archive restore` brings a window back. Raw results are never deleted before they are
    /// archived. Default: no archive.
    pub archive_after: Option<String>,
    /// How often the embedded store is backed up to the bucket, such as `6h` (default `24h`; `0s` for never).
    /// Replicated schedulers keep their state in PostgreSQL, which is backed up by its own tools.
    pub backup_every: Option<String>,
    /// How many backups of the embedded store are kept in the bucket (default 7).
    pub backup_keep: Option<u32>,
}

/// The `objects` section: a URL alone, or a mapping with the URL and its options.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
#[allow(clippy::large_enum_variant)] // only describes the schema; never built
#[schemars(rename = "ObjectsSetting")]
pub enum RawObjectsSetting {
    /// Just the URL, such as `s3://BUCKET/PREFIX` (keys and region from the standard environment variables).
    Url(String),
    /// The URL and its options.
    Full(RawObjects),
}

/// The kind of object store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// AWS S3 or an S3-compatible server.
    S3,
    /// Google Cloud Storage.
    Gcs,
    /// Azure Blob Storage.
    Azure,
    /// A directory.
    File,
}

/// The validated object store settings.
#[derive(Debug, Clone)]
pub struct Objects {
    /// The URL as written (it holds no secret).
    pub url: String,
    /// Which store.
    pub provider: Provider,
    /// The bucket (S3, GCS), the container (Azure) or the directory (file).
    pub bucket: String,
    /// The prefix everything goes under, without leading or trailing `/` (may be empty).
    pub prefix: String,
    /// S3: the endpoint.
    pub endpoint: Option<String>,
    /// S3: the region.
    pub region: Option<String>,
    /// S3: path-style requests.
    pub path_style: bool,
    /// S3: the access key id.
    pub access_key_id: Option<Template>,
    /// S3: the secret access key.
    pub secret_access_key: Option<Template>,
    /// S3: the session token.
    pub session_token: Option<Template>,
    /// GCS: the service account key (JSON).
    pub service_account_key: Option<Template>,
    /// Azure: the account.
    pub account: Option<String>,
    /// Azure: the access key.
    pub access_key: Option<Template>,
    /// Extra certificate authorities (a PEM file).
    pub ca_file: Option<std::path::PathBuf>,
    /// Archive raw results older than this.
    pub archive_after: Option<Duration>,
    /// Back up the embedded store this often (`None`: never).
    pub backup_every: Option<Duration>,
    /// Backups kept.
    pub backup_keep: u32,
}

/// The default interval of embedded-store backups.
pub const DEFAULT_BACKUP_EVERY: Duration = Duration::from_secs(24 * 3600);

/// Validates the `objects` section of one file.
pub(super) fn validate_objects(cx: &mut Ctx<'_>) -> Option<Objects> {
    let base = Path::root().key("objects");
    let node = cx.node(&base)?;
    let (raw, url_path) = match &node.kind {
        NodeKind::Scalar { text, .. } if !node.is_null() => {
            (RawObjects { url: text.clone(), ..RawObjects::default() }, base.clone())
        }
        _ => (cx.deserialize::<RawObjects>(&base)?, base.key("url")),
    };
    let (provider, rest) = match raw.url.split_once("://") {
        Some(("s3", rest)) => (Provider::S3, rest),
        Some(("gs", rest)) => (Provider::Gcs, rest),
        Some(("az" | "azure", rest)) => (Provider::Azure, rest),
        Some(("file", rest)) => (Provider::File, rest),
        _ => {
            let shown: String = raw.url.chars().take(80).collect();
            cx.error(
                &url_path,
                format!("{shown:?} is not an object store URL: write s3://BUCKET/PREFIX, gs://BUCKET/PREFIX, az://CONTAINER/PREFIX or file:///DIR"),
            );
            return None;
        }
    };
    let mut ok = true;
    let (bucket, prefix) = if provider == Provider::File {
        if !rest.starts_with('/') {
            cx.error(&url_path, "a file:// URL names an absolute directory, such as file:///var/lib/probenet/objects");
            ok = false;
        }
        (rest.trim_end_matches('/').to_owned(), String::new())
    } else {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() || !bucket.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')) {
            cx.error(&url_path, format!("{bucket:?} is not a bucket name: use letters, digits, `-`, `.` and `_`"));
            ok = false;
        }
        if raw.url.contains('@') || raw.url.contains('?') {
            cx.error(&url_path, "the URL names the bucket and prefix only: write keys and options as their own fields");
            ok = false;
        }
        (bucket.to_owned(), prefix.trim_matches('/').to_owned())
    };
    let only = |cx: &mut Ctx<'_>, key: &str, set: bool, providers: &str, ok: &mut bool| {
        if set {
            cx.error_at_key(&base.key(key), format!("`{key}` applies to {providers} only, not to {}", raw.url));
            *ok = false;
        }
    };
    if provider != Provider::S3 {
        only(cx, "endpoint", raw.endpoint.is_some(), "s3://", &mut ok);
        only(cx, "region", raw.region.is_some(), "s3://", &mut ok);
        only(cx, "path_style", raw.path_style.is_some(), "s3://", &mut ok);
        only(cx, "access_key_id", raw.access_key_id.is_some(), "s3://", &mut ok);
        only(cx, "secret_access_key", raw.secret_access_key.is_some(), "s3://", &mut ok);
        only(cx, "session_token", raw.session_token.is_some(), "s3://", &mut ok);
    }
    if provider != Provider::Gcs {
        only(cx, "service_account_key", raw.service_account_key.is_some(), "gs://", &mut ok);
    }
    if provider != Provider::Azure {
        only(cx, "account", raw.account.is_some(), "az://", &mut ok);
        only(cx, "access_key", raw.access_key.is_some(), "az://", &mut ok);
    }
    if provider == Provider::File {
        only(cx, "ca_file", raw.ca_file.is_some(), "s3://, gs:// and az://", &mut ok);
    }
    if raw.access_key_id.is_some() != raw.secret_access_key.is_some() {
        let missing = if raw.access_key_id.is_some() { "secret_access_key" } else { "access_key_id" };
        cx.error(&base, format!("`access_key_id` and `secret_access_key` go together: `{missing}` is missing"));
        ok = false;
    }
    if let Some(endpoint) = &raw.endpoint
        && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
    {
        cx.error(&base.key("endpoint"), "the endpoint is a URL such as https://s3.example.com:9000");
        ok = false;
    }
    let mut credential = |cx: &mut Ctx<'_>, key: &str, value: Option<&str>| {
        let template = value.and_then(|text| cx.credential(&base.key(key), text));
        if value.is_some() && template.is_none() {
            ok = false;
        }
        template
    };
    let access_key_id = credential(cx, "access_key_id", raw.access_key_id.as_deref());
    let secret_access_key = credential(cx, "secret_access_key", raw.secret_access_key.as_deref());
    let session_token = credential(cx, "session_token", raw.session_token.as_deref());
    let service_account_key = credential(cx, "service_account_key", raw.service_account_key.as_deref());
    let access_key = credential(cx, "access_key", raw.access_key.as_deref());
    let archive_after = match raw.archive_after.as_deref() {
        None => None,
        Some(text) => {
            let at = base.key("archive_after");
            let after = cx.duration(&at, text);
            match after {
                Some(after) if after < Duration::from_secs(3600) => {
                    cx.error(&at, "archive results at least an hour old (`1h` or more)");
                    ok = false;
                    None
                }
                Some(after) => Some(after),
                None => {
                    ok = false;
                    None
                }
            }
        }
    };
    let backup_every = match raw.backup_every.as_deref() {
        None => Some(DEFAULT_BACKUP_EVERY),
        Some(text) => match cx.duration(&base.key("backup_every"), text) {
            Some(Duration::ZERO) => None,
            Some(every) if every < Duration::from_secs(60) => {
                cx.error(&base.key("backup_every"), "back up at most once a minute (`1m` or more), or `0s` for never");
                ok = false;
                None
            }
            Some(every) => Some(every),
            None => {
                ok = false;
                None
            }
        },
    };
    let backup_keep = raw.backup_keep.unwrap_or(7);
    if backup_keep == 0 {
        cx.error(&base.key("backup_keep"), "keep at least 1 backup (turn backups off with `backup_every: 0s`)");
        ok = false;
    }
    ok.then(|| Objects {
        url: raw.url.clone(),
        provider,
        bucket,
        prefix,
        path_style: raw.path_style.unwrap_or(raw.endpoint.is_some()),
        endpoint: raw.endpoint,
        region: raw.region,
        access_key_id,
        secret_access_key,
        session_token,
        service_account_key,
        account: raw.account,
        access_key,
        ca_file: raw.ca_file.map(std::path::PathBuf::from),
        archive_after,
        backup_every,
        backup_keep,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::load_str;

    fn errors(yaml: &str) -> String {
        match load_str("c.yaml", yaml) {
            Ok(config) => panic!("accepted: {:?}", config.objects),
            Err(errors) => errors.to_string(),
        }
    }

    #[test]
    fn a_url_alone_or_with_options() {
        let config = load_str("c.yaml", "objects: s3://shots/team/a/\n").unwrap();
        let objects = config.objects.unwrap();
        assert_eq!((objects.bucket.as_str(), objects.prefix.as_str()), ("shots", "team/a"));
        assert!(!objects.path_style && objects.archive_after.is_none());
        assert_eq!(objects.backup_every, Some(super::DEFAULT_BACKUP_EVERY));
        let yaml = "objects:\n  url: s3://shots\n  endpoint: http://127.0.0.1:3900\n  region: garage\n  \
                    access_key_id: ${env:KEY}\n  secret_access_key: ${file:/run/s3}\n  archive_after: 2d\n  \
                    backup_every: 0s\n";
        let config = load_str("c.yaml", yaml).unwrap();
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
        let objects = config.objects.unwrap();
        assert!(objects.path_style, "path style by default with an endpoint");
        assert_eq!(objects.prefix, "");
        assert_eq!(objects.archive_after, Some(std::time::Duration::from_secs(2 * 86_400)));
        assert_eq!(objects.backup_every, None);
        assert_eq!(config.secrets.len(), 2, "both keys are secret references");
        let config = load_str("c.yaml", "objects: file:///var/lib/objects\n").unwrap();
        assert_eq!(config.objects.unwrap().bucket, "/var/lib/objects");
    }

    #[test]
    fn mistakes_are_named_where_they_are() {
        let text = errors("objects: ftp://x/y\n");
        assert!(text.contains("c.yaml:1:10") && text.contains("is not an object store URL"), "{text}");
        assert!(errors("objects: file://relative/dir\n").contains("absolute directory"));
        assert!(errors("objects: s3://bad bucket/x\n").contains("is not a bucket name"));
        assert!(errors("objects: s3://user:pw@bucket/x\n").contains("keys and options as their own fields"));
        let text = errors("objects:\n  url: gs://b\n  endpoint: https://x\n");
        assert!(text.contains("`endpoint` applies to s3:// only"), "{text}");
        let text = errors("objects:\n  url: s3://b\n  access_key_id: ${env:K}\n");
        assert!(text.contains("`secret_access_key` is missing"), "{text}");
        assert!(errors("objects:\n  url: s3://b\n  endpoint: minio:9000\n").contains("the endpoint is a URL"));
        assert!(errors("objects:\n  url: s3://b\n  archive_after: 10m\n").contains("at least an hour"));
        assert!(errors("objects:\n  url: s3://b\n  backup_every: 10s\n").contains("at most once a minute"));
        assert!(errors("objects:\n  url: s3://b\n  backup_keep: 0\n").contains("keep at least 1 backup"));
        assert!(errors("objects:\n  url: s3://b\n  bucket: x\n").contains("unknown field"));
        // A key written literally works, with a warning.
        let yaml = "objects:\n  url: s3://b\n  access_key_id: AKIA\n  secret_access_key: plain-secret\n";
        let config = load_str("c.yaml", yaml).unwrap();
        assert_eq!(config.warnings.len(), 2, "{:?}", config.warnings);
    }
}
