//! Emulated calico-node: Calico resources in, BIRD configuration and pod wiring out.
//!
//! `resources` parses what `calicoctl apply` takes (and the Kubernetes objects
//! calico-node reads), `selector` is Calico's label selector language, `peers`
//! resolves BGP peerings as confd does, `services` decides which Service addresses a
//! node advertises, `filters` writes BGPFilters, `ipam` hands out blocks and pod
//! addresses, `confd` renders exactly what calico-node writes (`version` says how
//! versions differ) and `bird` adapts that for upstream BIRD 1.6.

pub mod bird;
pub mod confd;
pub mod emulated;
pub mod filters;
pub mod ipam;
pub mod peers;
pub mod resources;
pub mod selector;
pub mod services;
pub mod version;

pub use resources::{CalicoError, Resources};
pub use version::CalicoVersion;
