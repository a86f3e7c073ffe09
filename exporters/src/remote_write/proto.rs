//! The Prometheus remote-write 1.0 messages (`prometheus.WriteRequest` of `prompb/remote.proto` and
//! `prompb/types.proto`), with their field numbers, and the snappy-compressed body.

/// A write request: series and, optionally, their metadata.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    /// The series, each with its samples.
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
    /// Type and help of the metric families.
    #[prost(message, repeated, tag = "3")]
    pub metadata: Vec<MetricMetadata>,
}

/// One series: its labels (sorted by name, `__name__` among them) and samples (oldest first).
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    /// The labels.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    /// The samples.
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
}

/// A label pair.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Message)]
pub struct Label {
    /// The name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// The value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// A sample.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Sample {
    /// The value.
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Unix milliseconds.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// A metric family's type and help.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MetricMetadata {
    /// The type: 1 counter, 2 gauge, 3 histogram, 5 summary.
    #[prost(int32, tag = "1")]
    pub r#type: i32,
    /// The family name.
    #[prost(string, tag = "2")]
    pub metric_family_name: String,
    /// The help text.
    #[prost(string, tag = "4")]
    pub help: String,
    /// The unit (left empty).
    #[prost(string, tag = "5")]
    pub unit: String,
}

/// The StaleNaN value that ends a series (Prometheus' `value.StaleNaN`).
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// The stale marker value.
pub fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

/// Whether a value is the stale marker (not any NaN).
pub fn is_stale(value: f64) -> bool {
    value.to_bits() == STALE_NAN_BITS
}

/// The request's protobuf encoding, snappy-compressed (block format), as the body of a remote-write POST.
pub fn encode(request: &WriteRequest) -> Result<Vec<u8>, snap::Error> {
    let raw = prost::Message::encode_to_vec(request);
    snap::raw::Encoder::new().compress_vec(&raw)
}

/// The same bytes as [`encode`] of a request holding `series` (labels, samples) and `metadata`, written
/// straight from borrowed labels: the sink keeps each series' labels between batches and does not copy them
/// into a [`WriteRequest`] for every request.
pub fn encode_parts<L: AsRef<[Label]>>(
    series: &[(L, Vec<Sample>)],
    metadata: &[MetricMetadata],
) -> Result<Vec<u8>, snap::Error> {
    use prost::encoding::{WireType, encode_key, encode_varint, message};
    let mut raw = Vec::new();
    for (labels, samples) in series {
        let labels = labels.as_ref();
        let length: usize = labels.iter().map(|label| message::encoded_len(1, label)).sum::<usize>()
            + samples.iter().map(|sample| message::encoded_len(2, sample)).sum::<usize>();
        encode_key(1, WireType::LengthDelimited, &mut raw);
        encode_varint(length as u64, &mut raw);
        for label in labels {
            message::encode(1, label, &mut raw);
        }
        for sample in samples {
            message::encode(2, sample, &mut raw);
        }
    }
    for family in metadata {
        message::encode(3, family, &mut raw);
    }
    snap::raw::Encoder::new().compress_vec(&raw)
}

/// The inverse of [`encode`], for receivers and tests.
pub fn decode(body: &[u8]) -> Result<WriteRequest, String> {
    let raw = snap::raw::Decoder::new().decompress_vec(body).map_err(|error| format!("snappy: {error}"))?;
    <WriteRequest as prost::Message>::decode(raw.as_slice()).map_err(|error| format!("protobuf: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_encode_to_the_bytes_of_the_whole_request() {
        let label = |name: &str, value: &str| Label { name: name.to_owned(), value: value.to_owned() };
        let series = vec![
            (
                vec![label("__name__", "probe_success"), label("job", "probenet"), label("probe", "eu-west")],
                vec![Sample { value: 1.0, timestamp: 1_767_225_600_000 }, Sample { value: stale_nan(), timestamp: 1 }],
            ),
            (vec![label("__name__", "probe_duration_seconds")], vec![Sample { value: 0.25, timestamp: -5 }]),
            (Vec::new(), Vec::new()),
        ];
        let metadata = vec![MetricMetadata {
            r#type: 2,
            metric_family_name: "probe_success".into(),
            help: "Whether the probe succeeded.".into(),
            unit: String::new(),
        }];
        let request = WriteRequest {
            timeseries: series
                .iter()
                .map(|(labels, samples)| TimeSeries { labels: labels.clone(), samples: samples.clone() })
                .collect(),
            metadata: metadata.clone(),
        };
        let whole = encode(&request).unwrap_or_else(|error| panic!("{error}"));
        let parts = encode_parts(&series, &metadata).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(parts, whole);
        let back = decode(&parts).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(back.timeseries.len(), 3);
        assert!(is_stale(back.timeseries[0].samples[1].value));
    }
}
