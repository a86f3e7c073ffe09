//! The `http` kind: one request (and its redirects) on fresh connections, timed phase by phase
//! as blackbox_exporter times them, and judged against its `expect` block.

mod execute;
mod spec;

pub use spec::{
    BasicAuthSpec, HttpCheck, HttpExpect, HttpExpectSpec, HttpSpec, HttpVersion, IpVersion, JsonAssert, JsonAssertSpec,
    JsonTest, PHASES, StatusMatch, StatusSpec,
};

impl crate::kind::KindCheck for HttpCheck {
    const KIND: crate::Kind = crate::Kind::Http;
    type Spec = HttpSpec;

    fn wrap(self) -> crate::CheckKind {
        crate::CheckKind::Http(Box::new(self))
    }

    /// The URL.
    fn target(&self) -> String {
        self.url.to_string()
    }

    fn representative(&self) -> crate::Outcome {
        let mut details = serde_json::json!({"remote_address": "192.0.2.1:443", "status_code": 200,
            "http_version": "1.1", "redirects": 0, "content_length": 1024, "tls": false});
        if self.url.scheme() == "https" {
            details["tls"] = serde_json::Value::Bool(true);
            crate::tls::add_representative_tls(&mut details);
        }
        crate::Outcome::representative(&["resolve", "connect", "tls", "processing", "transfer"], details)
    }
}
