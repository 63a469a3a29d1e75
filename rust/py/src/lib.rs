//! `PyO3` bindings of `clusterstate-core`, importable from Python as `clusterstate._core`.

mod convert;
mod depythonize;
mod errors;
mod liveness;
mod log;
mod master;
mod node;
mod outbox;
mod pyimports;
mod reducer;
mod state;

use pyo3::prelude::*;

// `module = "clusterstate"` makes the module's full name `clusterstate._core`; classes declared inside inherit it as
// their `__module__`. `gil_used = false` declares free-threading support (the default since PyO3 0.28, kept explicit).
/// Rust core of clusterstate (typed in `clusterstate/_core.pyi`).
#[pymodule(gil_used = false, module = "clusterstate")]
mod _core {
    use pyo3::prelude::*;

    #[pymodule_export]
    use crate::liveness::{PyNodeStaleness, PyStalenessTracker};
    #[pymodule_export]
    use crate::log::{PyEventLog, PyLogIterator};
    #[pymodule_export]
    use crate::master::{PyCycleResult, PyIngestResult, PyMasterCore};
    #[pymodule_export]
    use crate::node::{PyNodeCore, PyReceiveResult};
    #[pymodule_export]
    use crate::outbox::PyProducerOutbox;
    #[pymodule_export]
    use crate::reducer::{apply, apply_many};
    #[pymodule_export]
    use crate::state::PyCoreState;

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        m.add("__version__", clusterstate_core::VERSION)
    }
}
