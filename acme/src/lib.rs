//! vigie-acme: certificate management (ACME issuance and renewal). Lands with the TLS issue.
