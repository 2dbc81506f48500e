//! The region from broker host names.

use super::*;

#[test]
fn regions_from_brokers() {
    let r = |hosts: &[&str]| {
        region_from_brokers(&hosts.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
    };
    assert_eq!(
        r(&["b-1.mycluster.abc123.c2.kafka.eu-west-1.amazonaws.com:9098"]).as_deref(),
        Some("eu-west-1")
    );
    assert_eq!(
        r(&["boot-abcd1234.c2.kafka-serverless.us-east-2.amazonaws.com:9098"]).as_deref(),
        Some("us-east-2")
    );
    assert_eq!(
        r(&["B-2.X.Y.C3.KAFKA.AP-SOUTHEAST-2.AMAZONAWS.COM"]).as_deref(),
        Some("ap-southeast-2")
    );
    assert_eq!(
        r(&["b-1.x.y.c1.kafka.cn-north-1.amazonaws.com.cn:9098"]).as_deref(),
        Some("cn-north-1")
    );
    assert_eq!(
        r(&[
            "localhost:9092",
            "b-1.x.y.kafka.us-gov-west-1.amazonaws.com:9098"
        ])
        .as_deref(),
        Some("us-gov-west-1")
    );
    assert_eq!(r(&["localhost:9092", "kafka.example.com:9092"]), None);
    assert_eq!(r(&["kafka.amazonaws.com:9092"]), None);
    assert_eq!(r(&[]), None);
}
