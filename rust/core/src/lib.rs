//! Pure-Rust state core of `clusterstate`, the event-sourced store of a cluster master.
//!
//! This crate knows nothing about Python: the `PyO3` bindings live in the `clusterstate-py` crate, which exposes it as
//! `clusterstate._core`. It will hold the event and `State` types, the reducer (`apply`), the event log and the
//! staleness tracker that decides node liveness from the event stream rather than from wall clocks.
//!
//! For now it only carries its version:
//!
//! ```
//! assert_eq!(clusterstate_core::VERSION, env!("CARGO_PKG_VERSION"));
//! assert!(!clusterstate_core::VERSION.is_empty());
//! ```
#![forbid(unsafe_code)]

/// Version of this crate, which is also the version of the `clusterstate` Python package.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
