//! IPFIX (RFC 7011): templates, the message encoder, and the streaming decoder `qofdump` uses.

pub mod decode;
mod encoder;
mod template;

pub use encoder::{
    stats_elements, stats_values, Encoder, MessageSink, MAX_FILE_MESSAGE, STATS_TEMPLATE_ID,
};
pub use template::{Dims, Field, TemplateError, TemplateSpec, QOF_DEFAULT};
