//! IPFIX (RFC 7011): templates, the message encoder, and the streaming decoder `qofdump` uses.

pub mod decode;
mod encoder;
mod template;

pub use encoder::{
    nat_elements, nat_values, stats_elements, stats_values, Encoder, MessageSink, MAX_FILE_MESSAGE,
    NAT4_TEMPLATE_ID, NAT6_TEMPLATE_ID, STATS_TEMPLATE_ID,
};
pub use template::{Dims, Field, TemplateError, TemplateSpec, QOF_DEFAULT};
