//! The test harness: a real Tansu broker per test (`broker`), the server on port 0 (`app`) and
//! its management API (`api`), a raw HTTP client (`http`), an import target (`target`), an
//! in-process worker (`worker`), a TCP proxy that cuts, blackholes or slows the network to the
//! broker (`proxy`), a raw Kafka probe that tells a wedged broker from a wedged client or proxy
//! (`probe`), a fleet of `hookpipe serve` processes behind haproxy (`fleet`) and the fault
//! campaign's table (`faults`).

pub mod api;
pub mod app;
pub mod broker;
pub mod faults;
pub mod fleet;
pub mod http;
pub mod probe;
pub mod process;
pub mod proxy;
pub mod signing;
pub mod target;
pub mod worker;
