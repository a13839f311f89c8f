//! Positional arguments of one CDT op (`[op_code, arg1, arg2, ...]`), with typed accessors
//! that turn a missing or mistyped argument into a parameter error (4).
//!
//! Aerospike counterpart: `cdt.c` `cdt_process_state_get_params` and the op table that says
//! how many trailing arguments are optional.

use crate::error::DataError;
use crate::msgpack::{List, Map, Value};

/// The arguments after the op code.
pub struct Args(pub Vec<Value>);

impl Args {
    /// Fails unless there are between `min` and `max` arguments.
    pub fn check(&self, min: usize, max: usize) -> Result<(), DataError> {
        if self.0.len() < min || self.0.len() > max {
            return Err(DataError::Parameter("wrong number of CDT op arguments"));
        }
        Ok(())
    }

    pub fn value(&self, i: usize) -> Result<&Value, DataError> {
        self.0
            .get(i)
            .ok_or(DataError::Parameter("missing CDT op argument"))
    }

    pub fn opt_value(&self, i: usize) -> Option<&Value> {
        self.0.get(i)
    }

    pub fn int(&self, i: usize) -> Result<i64, DataError> {
        as_int(self.value(i)?)
    }

    /// An optional integer argument (absent: None).
    pub fn opt_int(&self, i: usize) -> Result<Option<i64>, DataError> {
        self.0.get(i).map(as_int).transpose()
    }

    /// An optional count: absent means "to the end". The server reads counts as unsigned,
    /// so a negative count is a huge one (`get_range(1, -1)` reads to the end).
    pub fn opt_count(&self, i: usize) -> Result<Option<u64>, DataError> {
        match self.0.get(i) {
            None => Ok(None),
            Some(Value::Uint(u)) => Ok(Some(*u)),
            Some(v) => Ok(Some(as_int(v)?.cast_unsigned())),
        }
    }

    /// An optional flags argument, 0 when absent.
    pub fn flags(&self, i: usize) -> Result<u64, DataError> {
        Ok(self.opt_int(i)?.unwrap_or(0).unsigned_abs())
    }

    pub fn list(&self, i: usize) -> Result<&List, DataError> {
        match self.value(i)? {
            Value::List(l) => Ok(l),
            _ => Err(DataError::Parameter("CDT op argument is not a list")),
        }
    }

    pub fn map(&self, i: usize) -> Result<&Map, DataError> {
        match self.value(i)? {
            Value::Map(m) => Ok(m),
            _ => Err(DataError::Parameter("CDT op argument is not a map")),
        }
    }
}

fn as_int(v: &Value) -> Result<i64, DataError> {
    match v {
        Value::Int(i) => Ok(*i),
        _ => Err(DataError::Parameter("CDT op argument is not an integer")),
    }
}
