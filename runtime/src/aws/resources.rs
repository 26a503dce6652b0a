//! The resource a call to SQS, SNS, S3 or Lambda names, read from its serialized request
//! without the service's crate: `queue_url`, `topic_arn`, `bucket_name`, `function_name`.
//! Only these fields are taken; message bodies, object keys and payloads never are.

use crate::record::NamedResource;

/// The resource the call's request names, if it names one.
pub(super) fn from_request(service: &str, uri: &str, body: Option<&[u8]>) -> Option<NamedResource> {
    match service {
        // The query protocol's form; the JSON protocol's body is read once, with the other
        // whitelisted members (`fields`).
        "SQS" => body
            .filter(|b| b.first() != Some(&b'{'))
            .and_then(|b| form_value(b, "QueueUrl"))
            .map(NamedResource::Queue),
        "SNS" => Some(NamedResource::Topic(form_value(body?, "TopicArn")?)),
        "Lambda" => {
            let (_, path) = crate::url::split(uri);
            let rest = path.split("/functions/").nth(1)?;
            let name = rest.split(['/', '?']).next()?;
            let name = percent_decode(name, false)?;
            (!name.is_empty()).then_some(NamedResource::Function(name))
        }
        "S3" => {
            let (authority, path) = crate::url::split(uri);
            let host = crate::url::host(authority);
            let bucket = match host.find(".s3.").or_else(|| host.find(".s3-")) {
                // Virtual-hosted style: `bucket.s3.region.amazonaws.com`.
                Some(end) => host[..end].to_owned(),
                // Path style: `/bucket/key`.
                None => percent_decode(
                    path.trim_start_matches('/').split(['/', '?']).next()?,
                    false,
                )?,
            };
            (!bucket.is_empty()).then_some(NamedResource::Bucket(bucket))
        }
        _ => None,
    }
}

/// The value of `key` in an `application/x-www-form-urlencoded` body.
pub(super) fn form_value(body: &[u8], key: &str) -> Option<String> {
    let body = std::str::from_utf8(body).ok()?;
    body.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == key).then(|| percent_decode(v, true)).flatten()
    })
}

pub(super) fn percent_decode(s: &str, plus_is_space: bool) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::from_request;
    use crate::record::NamedResource;

    #[test]
    fn resources() {
        let q = "https://sqs.us-east-1.amazonaws.com/123456789012/orders";
        // The JSON protocol's `QueueUrl` is `fields`' to read.
        assert_eq!(
            from_request(
                "SQS",
                "https://sqs.us-east-1.amazonaws.com/",
                Some(format!(r#"{{"QueueUrl":"{q}","MessageBody":"secret"}}"#).as_bytes())
            ),
            None
        );
        assert_eq!(
            from_request(
                "SQS",
                "/",
                Some(b"Action=SendMessage&QueueUrl=https%3A%2F%2Fq%2F1&MessageBody=secret")
            ),
            Some(NamedResource::Queue("https://q/1".to_owned()))
        );
        assert_eq!(
            from_request(
                "SNS",
                "/",
                Some(b"Action=Publish&Message=secret&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A1%3At")
            ),
            Some(NamedResource::Topic("arn:aws:sns:us-east-1:1:t".to_owned()))
        );
        assert_eq!(
            from_request(
                "Lambda",
                "https://lambda.us-east-1.amazonaws.com/2015-03-31/functions/my%2Dfn/invocations",
                None
            ),
            Some(NamedResource::Function("my-fn".to_owned()))
        );
        assert_eq!(
            from_request(
                "S3",
                "https://photos.s3.us-east-1.amazonaws.com/secret/key.jpg",
                None
            ),
            Some(NamedResource::Bucket("photos".to_owned()))
        );
        assert_eq!(
            from_request(
                "S3",
                "http://127.0.0.1:5000/photos/secret-key?x-id=PutObject",
                None
            ),
            Some(NamedResource::Bucket("photos".to_owned()))
        );
        assert_eq!(from_request("SQS", "/", Some(b"{not json")), None);
        assert_eq!(from_request("SNS", "/", Some(b"%zz")), None);
        assert_eq!(from_request("STS", "/", None), None);
    }
}
