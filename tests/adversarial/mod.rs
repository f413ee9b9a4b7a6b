//! The adversarial suite: vigie attacked the way the internet will (framing, paths, cache
//! poisoning, HTTP/2 abuse, slow clients, TLS scans, faults), Debian's nginx beside it.

mod cache_poisoning;
mod faults;
mod faults_vigie;
mod h2_abuse;
mod paths;
mod slow_clients;
mod smuggling;
mod smuggling_cases;
mod smuggling_cases_more;
mod tls_scan;
