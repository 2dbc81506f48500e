//! What only a real Apache Kafka broker shows (issue: Apache Kafka): the broker's own size limit, real
//! watermarks after retention, and interoperability with the Java client.
