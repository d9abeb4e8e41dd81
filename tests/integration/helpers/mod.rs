//! The test harness: a real Tansu broker per test (`broker`), the server on port 0 (`app`), a
//! raw HTTP client (`http`), an import target (`target`), an in-process worker (`worker`) and a
//! fleet of `hookpipe serve` processes behind haproxy (`fleet`).

pub mod app;
pub mod broker;
pub mod fleet;
pub mod http;
pub mod process;
pub mod signing;
pub mod target;
pub mod worker;
