//! IPFIX messages: encoder, decoder, file writer.
