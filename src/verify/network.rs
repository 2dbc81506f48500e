//! The network stages: DNS for every broker, then TCP to every address at once.

use std::net::SocketAddr;

use super::verdict::Verdict;
use super::{DNS_TIMEOUT, TCP_TIMEOUT};

/// DNS: the addresses of every broker that resolves; a verdict when none does.
pub(super) async fn resolve(brokers: &[String]) -> Result<Vec<(String, Vec<SocketAddr>)>, Verdict> {
    let lookups = futures_util::future::join_all(brokers.iter().map(|b| async move {
        let r = tokio::time::timeout(DNS_TIMEOUT, tokio::net::lookup_host(b.clone())).await;
        (b.clone(), r)
    }))
    .await;
    let mut resolved: Vec<(String, Vec<SocketAddr>)> = Vec::new();
    let mut dns_errors = Vec::new();
    for (broker, r) in lookups {
        match r {
            Ok(Ok(addrs)) => resolved.push((broker, addrs.collect())),
            Ok(Err(e)) => dns_errors.push(format!("`{}` ({e})", host_of(&broker))),
            Err(_) => dns_errors.push(format!(
                "`{}` (no answer within {} s)",
                host_of(&broker),
                DNS_TIMEOUT.as_secs()
            )),
        }
    }
    if resolved.is_empty() {
        return Err(Verdict::fail(
            "DNS",
            format!("cannot resolve {}", dns_errors.join(", ")),
            "Check the broker host names and that this network can resolve them.",
        ));
    }
    Ok(resolved)
}

/// TCP: every address of every broker at once, so the time does not grow with their number. The first
/// address of each broker that connects; a verdict when no broker does.
pub(super) async fn connect(
    resolved: &[(String, Vec<SocketAddr>)],
) -> Result<Vec<(String, SocketAddr)>, Verdict> {
    let attempts = futures_util::future::join_all(resolved.iter().flat_map(|(broker, addrs)| {
        addrs.iter().map(move |addr| async move {
            let r = match tokio::time::timeout(TCP_TIMEOUT, tokio::net::TcpStream::connect(addr))
                .await
            {
                Ok(Ok(_)) => Ok(*addr),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!("no answer within {} s", TCP_TIMEOUT.as_secs())),
            };
            (broker.as_str(), r)
        })
    }))
    .await;
    let mut reachable: Vec<(String, SocketAddr)> = Vec::new();
    let mut errs: Vec<String> = Vec::new();
    for (broker, addrs) in resolved {
        let mine = attempts.iter().filter(|(b, _)| b == broker);
        if let Some(addr) = mine.clone().find_map(|(_, r)| r.as_ref().ok()) {
            reachable.push((broker.clone(), *addr));
        } else {
            let last = mine
                .filter_map(|(_, r)| r.as_ref().err())
                .next_back()
                .cloned()
                .unwrap_or_else(|| format!("no address ({} resolved)", addrs.len()));
            errs.push(format!("{broker} ({last})"));
        }
    }
    if reachable.is_empty() {
        return Err(Verdict::fail(
            "connection",
            format!("cannot connect to {}", errs.join(", ")),
            "Check the host and port, that the brokers are running, and that a firewall allows the connection.",
        ));
    }
    Ok(reachable)
}

pub(super) fn host_of(broker: &str) -> &str {
    broker.rsplit_once(':').map_or(broker, |(h, _)| h)
}
