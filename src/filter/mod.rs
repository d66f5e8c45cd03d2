//! Classic BPF filtering with libpcap's compiler (placeholder until the filter branch lands).

use std::fmt;

pub struct Filter;

#[derive(Debug)]
pub struct FilterError(String);

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FilterError {}

impl Filter {
    pub fn new(expression: &str) -> Result<Filter, FilterError> {
        Err(FilterError(format!(
            "--filter '{expression}': not available in this build"
        )))
    }

    pub fn matches(&mut self, _linktype: u32, _wire_len: u32, _data: &[u8]) -> bool {
        true
    }
}
