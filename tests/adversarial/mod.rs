//! The adversarial suite: attacks and faults, vigie and Debian's nginx side by side.

mod h2_abuse;
