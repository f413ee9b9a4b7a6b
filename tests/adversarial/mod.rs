//! The adversarial suite: vigie attacked the way the internet will, nginx beside it.

mod cache_poisoning;
mod paths;
mod smuggling;
mod smuggling_cases;
mod smuggling_cases_more;
