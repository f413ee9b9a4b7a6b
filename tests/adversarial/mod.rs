//! The adversarial suite: attacks and faults, vigie and Debian's nginx side by side.

mod faults;
mod faults_vigie;
mod h2_abuse;
mod slow_clients;
mod tls_scan;
