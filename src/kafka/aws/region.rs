//! The AWS region of an MSK cluster, read from its bootstrap broker host names.

/// The AWS region of an MSK bootstrap broker list, from the first host shaped
/// `….kafka.<region>.amazonaws.com[.cn]` or `….kafka-serverless.<region>.amazonaws.com[.cn]`.
pub fn region_from_brokers(brokers: &[String]) -> Option<String> {
    brokers.iter().find_map(|b| {
        let b = b.trim();
        let host = match b.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|c| c.is_ascii_digit()) => h,
            _ => b,
        };
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let labels: Vec<&str> = host.split('.').collect();
        labels.windows(3).find_map(|w| {
            let region = w[1];
            let looks_like_region = region.contains('-')
                && region.ends_with(|c: char| c.is_ascii_digit())
                && region
                    .bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-');
            ((w[0] == "kafka" || w[0] == "kafka-serverless")
                && w[2] == "amazonaws"
                && looks_like_region)
                .then(|| region.to_owned())
        })
    })
}
