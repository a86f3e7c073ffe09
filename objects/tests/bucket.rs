//! The bucket against a real S3-compatible server (Garage) and a directory: writes, reads, lists and deletes
//! under the prefix; wrong keys and a server that is down give clear errors, quickly, that hold no secret.

#![allow(clippy::unwrap_used)] // test helpers panic on setup failures, like the tests themselves

use std::time::{Duration, Instant};

use bytes::Bytes;
use probenet_objects::{Bucket, BucketError};
use probenet_testkit::garage::Garage;

fn spec(yaml: &str) -> probenet_objects::Spec {
    let config = probenet_checks::config::load_str("objects.yaml", yaml).unwrap_or_else(|errors| panic!("{errors}"));
    config.objects.expect("objects is set")
}

async fn exercise(bucket: &Bucket) {
    bucket.verify().await.unwrap_or_else(|error| panic!("{error}"));
    bucket.put("artifacts/1/a.png", Bytes::from_static(b"one")).await.unwrap();
    bucket.put("artifacts/1/b.png", Bytes::from_static(b"two")).await.unwrap();
    bucket.put("artifacts/2/c.png", Bytes::from_static(b"three")).await.unwrap();
    bucket.put("other/x", Bytes::from_static(b"x")).await.unwrap();
    assert_eq!(bucket.get("artifacts/1/b.png").await.unwrap(), Some(Bytes::from_static(b"two")));
    assert_eq!(bucket.get("artifacts/1/none.png").await.unwrap(), None);
    let listed: Vec<(String, u64)> =
        bucket.list("artifacts").await.unwrap().into_iter().map(|object| (object.key, object.size)).collect();
    assert_eq!(
        listed,
        [("artifacts/1/a.png".to_owned(), 3), ("artifacts/1/b.png".to_owned(), 3), ("artifacts/2/c.png".to_owned(), 5)]
    );
    assert_eq!(bucket.folders("artifacts").await.unwrap(), ["1", "2"]);
    assert_eq!(bucket.delete_folder("artifacts/1").await.unwrap(), 2);
    assert_eq!(bucket.folders("artifacts").await.unwrap(), ["2"]);
    bucket.delete("artifacts/2/c.png").await.unwrap();
    bucket.delete("artifacts/2/c.png").await.unwrap();
    assert!(bucket.list("artifacts").await.unwrap().is_empty());
    // Large objects go in parts.
    let dir = tempfile::tempdir().unwrap();
    let big: Vec<u8> = (0..(20 << 20)).map(|i: u32| (i % 251) as u8).collect();
    std::fs::write(dir.path().join("big"), &big).unwrap();
    assert_eq!(bucket.put_file("backups/big", &dir.path().join("big")).await.unwrap(), big.len() as u64);
    assert_eq!(bucket.get_file("backups/big", &dir.path().join("back")).await.unwrap(), Some(big.len() as u64));
    assert!(std::fs::read(dir.path().join("back")).unwrap() == big);
    assert_eq!(bucket.get_file("backups/none", &dir.path().join("none")).await.unwrap(), None);
}

#[tokio::test]
async fn a_bucket_on_an_s3_server() {
    let Some(mut garage) = Garage::start_or_skip("a_bucket_on_an_s3_server", "probenet") else { return };
    let dir = tempfile::tempdir().unwrap();
    let first = spec(&garage.objects_yaml(dir.path(), "team/a"));
    let mut secrets = Vec::new();
    let bucket = Bucket::open(&first, &mut secrets).unwrap();
    assert!(secrets.contains(&garage.secret), "the secret is known, for redaction");
    exercise(&bucket).await;
    // Everything went under the prefix: another prefix of the same bucket sees none of it.
    let other = Bucket::open(&spec(&garage.objects_yaml(dir.path(), "team/b")), &mut secrets).unwrap();
    other.put("other/y", Bytes::from_static(b"y")).await.unwrap();
    assert_eq!(other.list("other").await.unwrap().len(), 1);
    assert_eq!(bucket.list("other").await.unwrap().len(), 1);

    // Wrong keys: a clear error naming the bucket and the code, never the secret.
    std::fs::write(dir.path().join("bad-secret"), "not-the-secret-0123456789").unwrap();
    let wrong = garage.objects_yaml(dir.path(), "team/a").replace(
        &format!("${{file:{}}}", dir.path().join("s3-secret").display()),
        &format!("${{file:{}}}", dir.path().join("bad-secret").display()),
    );
    let bucket_wrong = Bucket::open(&spec(&wrong), &mut Vec::new()).unwrap();
    let error = bucket_wrong.verify().await.unwrap_err();
    assert!(matches!(error, BucketError::Denied { .. }), "{error:?}");
    let text = error.to_string();
    assert!(text.contains("the bucket refused the keys") && text.contains("s3://probenet/team/a"), "{text}");
    assert!(!text.contains("not-the-secret") && !text.contains(&garage.secret), "{text}");
    assert!(!format!("{bucket_wrong:?}").contains("not-the-secret"));

    // A bucket that does not exist.
    let missing = garage.objects_yaml(dir.path(), "x").replace("s3://probenet/", "s3://no-such-bucket/");
    let error = Bucket::open(&spec(&missing), &mut Vec::new()).unwrap().verify().await.unwrap_err();
    assert!(matches!(error, BucketError::NoBucket { .. }), "{error:?}");

    // The server down: an error within the retry bound, not a hang.
    garage.down();
    let started = Instant::now();
    let error = bucket.put("artifacts/9/z.png", Bytes::from_static(b"z")).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(30), "took {:?}", started.elapsed());
    assert!(matches!(error, BucketError::Failed { .. }), "{error:?}");
    assert!(error.to_string().contains("writing artifacts/9/z.png"), "{error}");
    garage.up();
    bucket.put("artifacts/9/z.png", Bytes::from_static(b"z")).await.unwrap();
    assert_eq!(bucket.get("artifacts/9/z.png").await.unwrap(), Some(Bytes::from_static(b"z")));
}

#[tokio::test]
async fn a_bucket_in_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("objects");
    let bucket = Bucket::open(&spec(&format!("objects: file://{}\n", root.display())), &mut Vec::new()).unwrap();
    exercise(&bucket).await;
    assert!(root.join("other/x").is_file());
}
