//! The test harness: a real Tansu broker per test (`broker`), the server on port 0 (`app`), a
//! raw HTTP client (`http`), an import target (`target`) and an in-process worker (`worker`).

pub mod app;
pub mod broker;
pub mod http;
pub mod process;
pub mod signing;
pub mod target;
pub mod worker;
