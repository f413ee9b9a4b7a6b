//! The adversarial suite: vigie attacked the way the internet will, nginx beside it.

mod smuggling;
mod smuggling_cases;
