//! Every Python object the bindings call back into, by module path, imported once on first use.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

/// `module.name`, imported the first time it is needed and kept for the life of the interpreter.
pub struct LazyImport {
    module: &'static str,
    name: &'static str,
    cell: PyOnceLock<Py<PyAny>>,
}

impl LazyImport {
    const fn new(module: &'static str, name: &'static str) -> Self {
        Self {
            module,
            name,
            cell: PyOnceLock::new(),
        }
    }

    /// The imported object.
    pub fn get<'py>(&self, py: Python<'py>) -> PyResult<&Bound<'py, PyAny>> {
        self.cell.import(py, self.module, self.name)
    }
}

pub static JSON_LOADS: LazyImport = LazyImport::new("json", "loads");
pub static GET_LOGGER: LazyImport = LazyImport::new("logging", "getLogger");
pub static BASE_MODEL: LazyImport = LazyImport::new("pydantic", "BaseModel");
pub static TAGGED_MODEL: LazyImport = LazyImport::new("clusterstate.models._base", "TaggedModel");
pub static NODE_DISCONNECTED: LazyImport = LazyImport::new("clusterstate.models", "NodeDisconnected");
pub static FIELD_VALUE: LazyImport = LazyImport::new("clusterstate._fields", "field_value");
pub static DECODE_STATE: LazyImport = LazyImport::new("clusterstate.codec", "decode_state");
pub static DECODE_EVENT: LazyImport = LazyImport::new("clusterstate.codec", "decode_indexed_event");
