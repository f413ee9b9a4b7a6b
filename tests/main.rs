//! End-to-end tests: the real `vigie` binary, real origins, real sockets on loopback.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

mod acme;
mod acme_ari;
mod acme_fallback;
mod acme_ip;
mod acme_profiles;
mod acme_timing;
mod acme_year;
mod adversarial;
mod balancing;
mod buffering;
mod cache;
mod check;
mod cluster;
mod cluster_limits;
mod cluster_purge;
mod compression;
mod details;
mod dist;
mod hardening;
mod import;
mod limits;
mod nginxfeat;
mod ops;
mod plan;
mod proxying;
mod routing;
mod status;
mod status_page;
mod tls;
mod tunnels;
mod upstream_tls;
