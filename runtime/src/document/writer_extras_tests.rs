//! What the writer and the translator add beyond the differential: links, linked causes.

use super::*;

#[cfg(feature = "events")]
#[test]
fn a_records_producer_becomes_a_link_and_its_links_metadata() {
    use crate::vocabulary::PRODUCER;
    let producer = "Root=1-6b084299-bd59238160bcca975aeac791;Parent=53995c3f42cd8ad8;Sampled=1";
    let mut records = one(
        vec![
            KeyValue::new(PRODUCER, producer),
            KeyValue::new("annotation.MessageId", "m-1"),
        ],
        Some(Extra {
            metadata: vec![("order".to_owned(), Json::from("o-1"))],
            ..Extra::default()
        }),
    );
    records[0].link_producer();
    // The field is gone (no attribute of ours reaches OTLP), the link is the span's own.
    assert!(records[0]
        .span
        .attributes
        .iter()
        .all(|kv| kv.key.as_str() != PRODUCER));
    let link = &records[0].span.links.links[0];
    assert_eq!(
        link.span_context.trace_id(),
        TraceId::from_hex("6b084299bd59238160bcca975aeac791").expect("id")
    );
    assert_eq!(
        link.span_context.span_id(),
        SpanId::from_hex("53995c3f42cd8ad8").expect("id")
    );
    // The daemon path: a top-level `links` member, as the collector writes it; the record's
    // metadata stays its own.
    let body = body(&records);
    assert!(
        body.contains(concat!(
            r#""metadata":{"default":{"order":"o-1"}},"links":[{"trace_id":"1-6b084299-bd59238160bcca975aeac791","#,
            r#""id":"53995c3f42cd8ad8","attributes":{"aws.xray.reserved.reference_type":"parent"}}]"#
        )),
        "{body}"
    );
    // The translator drops links: they are added to its document, with the metadata, in one
    // `metadata` member beside what the translator puts there itself (an annotation it cannot
    // index).
    #[cfg(feature = "translator")]
    {
        records[0].span.attributes.push(KeyValue::new(
            "annotation.bad",
            opentelemetry::Value::Array(vec![1i64, 2].into()),
        ));
        let mut buf = Vec::new();
        assert!(
            !write_group(&records, &mut buf, Mode::Exact, None),
            "not covered"
        );
        assert!(Fallback::default().write_nested(&records, &mut buf, None));
        let text = String::from_utf8_lossy(&buf[DAEMON_HEADER.len()..]).into_owned();
        assert_eq!(text.matches(r#""metadata":"#).count(), 1, "{text}");
        let document: Json = serde_json::from_str(&text).expect("JSON");
        assert_eq!(document["metadata"]["default"]["order"], "o-1", "{text}");
        assert_eq!(
            document["metadata"]["bad"],
            serde_json::json!([1, 2]),
            "{text}"
        );
        assert_eq!(document["links"][0]["id"], "53995c3f42cd8ad8", "{text}");
    }
    // A header that does not parse links nothing, and the field is still dropped.
    let mut bad = one(vec![KeyValue::new(PRODUCER, "Root=nonsense")], None);
    bad[0].link_producer();
    assert!(bad[0].span.links.links.is_empty() && bad[0].span.attributes.is_empty());
}

#[test]
fn causes_are_linked_by_id_with_the_working_directory() {
    let chain = ["outer", "middle", "root cause"]
        .map(|m| ("Error".to_owned(), m.to_owned()))
        .to_vec();
    let records = build(&[Shape {
        error: Some(chain),
        ..handler_shape()
    }]);
    let check = |text: &str| {
        let document: Json = serde_json::from_str(text).expect("JSON");
        let cause = &document["cause"];
        let directory = std::env::current_dir().expect("cwd");
        assert_eq!(
            cause["working_directory"],
            directory.to_str().expect("UTF-8")
        );
        let exceptions = cause["exceptions"].as_array().expect("exceptions");
        assert_eq!(exceptions.len(), 3, "{text}");
        assert_eq!(exceptions[0]["cause"], exceptions[1]["id"], "{text}");
        assert_eq!(exceptions[1]["cause"], exceptions[2]["id"], "{text}");
        assert!(exceptions[2].get("cause").is_none(), "{text}");
        assert_eq!(exceptions[2]["message"], "root cause");
    };
    check(&body(&records));
    #[cfg(feature = "translator")]
    {
        let mut buf = Vec::new();
        assert!(Fallback::default().write_nested(&records, &mut buf, None));
        check(&String::from_utf8_lossy(&buf[DAEMON_HEADER.len()..]));
    }
}
