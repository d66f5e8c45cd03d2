//! IPFIX messages: encoder, decoder, file writer.

pub mod decode;
